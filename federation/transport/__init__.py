"""Federation HTTP transport: X-Matrix request signing, inbound request
authentication and TLS contexts.

spec: server-server-api.md#api-standards, #request-authentication
"""
