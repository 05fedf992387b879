"""End-to-end encryption across servers: our users' device lists and keys served to
other servers and announced to them as they change, remote users' device lists
cached, their keys queried and claimed, and to-device messages both ways.

spec: server-server-api.md#device-management, #end-to-end-encryption,
#send-to-device-messaging
"""
