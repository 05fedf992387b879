"""Building the key services from the config (``federation/assembly.py`` calls this).

spec: server-server-api.md#retrieving-server-keys
"""

from __future__ import annotations

import attrs
from signedjson.types import SigningKey

from federation.keys.fetchers import DirectKeyFetcher, KeyTransport, NotaryKeyFetcher
from federation.keys.keyring import Keyring
from federation.keys.local import LocalServerKeys
from federation.keys.notary import KeyNotary
from federation.servlets import keys as key_servlets
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.http.server import Router
from homeserver.ratelimit import RateLimiter
from homeserver.storage.database import Database
from homeserver.storage.server_keys import ServerKeyStore


@attrs.frozen
class KeyServices:
    #: Our own keys and their signed ``/key/v2/server`` response.
    local_keys: LocalServerKeys
    #: Checks other servers' signatures (``KeyVerifier``).
    keyring: Keyring
    #: Answers ``/key/v2/query`` about other servers.
    notary: KeyNotary

    def register_servlets(self, router: Router) -> None:
        """The ``/_matrix/key/v2`` endpoints (listeners serving ``keys`` or
        ``federation``)."""
        key_servlets.register(router, local_keys=self.local_keys, notary=self.notary)


def build_key_services(
    *,
    config: HomeServerConfig,
    clock: Clock,
    database: Database,
    signing_key: SigningKey,
    transport: KeyTransport,
) -> KeyServices:
    """``transport``: the outbound federation client.  ``ValueError`` for an invalid
    key in ``old_signing_keys`` or ``trusted_key_servers`` (the config reader checks
    them first)."""
    federation = config.federation
    local_keys = LocalServerKeys(
        server_name=config.server_name,
        signing_key=signing_key,
        old_signing_keys=federation.old_signing_keys,
        key_refresh_interval_ms=federation.key_refresh_interval_ms,
        clock=clock,
    )
    store = ServerKeyStore(database)
    keyring = Keyring(
        local_keys=local_keys,
        store=store,
        notaries=[
            NotaryKeyFetcher.from_config(transport, trusted)
            for trusted in federation.trusted_key_servers
            # Asking ourselves would only go round in a circle.
            if trusted.server_name != config.server_name
        ],
        direct=DirectKeyFetcher(transport),
        clock=clock,
    )
    whitelist = federation.federation_domain_whitelist
    notary = KeyNotary(
        local_keys=local_keys,
        store=store,
        keyring=keyring,
        clock=clock,
        domain_whitelist=None if whitelist is None else frozenset(whitelist),
        limiter=RateLimiter(clock, config.rate_limits.key_query),
    )
    return KeyServices(local_keys=local_keys, keyring=keyring, notary=notary)
