"""End-to-end encryption support on the server: what the server stores and relays
for clients' encryption (it never holds a decryption key).

spec: client-server-api/modules/end_to_end_encryption.md
"""
