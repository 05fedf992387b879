"""The federation API's servlets: ``/_matrix/federation/...`` and ``/_matrix/key/v2/...``.

Each module registers its handlers on a listener's router; the authenticated ones
call ``FederationRequestAuthenticator.authenticate`` first.
"""
