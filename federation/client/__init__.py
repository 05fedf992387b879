"""The outbound federation client: server discovery, the TLS agent, signed requests,
and per-destination backoff.  spec: server-server-api.md#server-discovery"""
