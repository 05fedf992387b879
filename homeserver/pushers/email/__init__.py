"""The ``email`` pusher kind: notification digests over SMTP, their templates and
unsubscribe links.  spec: client-server-api/modules/push.md"""
