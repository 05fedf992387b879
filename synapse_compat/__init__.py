"""Migration from, and compatibility with, Synapse.

Already compatible: the config keys (``homeserver.config``), the signing key file
format (``homeserver.crypto.keys``), bcrypt password hashes with pepper
(``homeserver.auth.passwords``) and shared-secret admin registration
(``homeserver.auth.shared_secret``).  The database importer arrives in its own issue.
"""
