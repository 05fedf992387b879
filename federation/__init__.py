"""The server-server (federation) API: a second front door into the same handlers.

spec: server-server-api.md.  Built in the federation issue; nothing here yet.
"""
