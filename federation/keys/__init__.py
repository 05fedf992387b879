"""Server signing keys: ours (``local``), other servers' (``keyring``, fetched by
``fetchers`` from notaries or the servers themselves and kept by
``homeserver.storage.server_keys``), and answering other servers' key queries as a
notary (``notary``).

spec: server-server-api.md#retrieving-server-keys
"""
