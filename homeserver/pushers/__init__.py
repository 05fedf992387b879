"""Pushers: telling a user's devices (or mailbox) about notifying events while the
app is closed.  spec: client-server-api/modules/push.md, push-gateway-api.md"""
