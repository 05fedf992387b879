"""Room aliases and the published room directory.

spec: client-server-api/_index.md#room-aliases, #published-room-directory
"""
