"""Notifications a user was sent: ``GET /notifications`` and what the email digest
reuses.  spec: client-server-api/modules/push.md"""
