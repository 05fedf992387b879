"""Building the outbound federation client from the config (``federation/assembly.py``
calls :func:`build_federation_client`)."""

from __future__ import annotations

import attrs
from signedjson.types import SigningKey
from twisted.internet.interfaces import IResolver
from twisted.names import client as dns_client

from federation.client.agent import FederationTlsPolicy, MatrixFederationAgent, load_ca_certificates
from federation.client.backoff import DestinationBackoff
from federation.client.discovery import ServerResolver
from federation.client.http import FederationHttpClient
from federation.client.srv import SrvResolver
from federation.client.well_known import WellKnownResolver
from homeserver import __version__
from homeserver.clock import Clock
from homeserver.config.federation import FederationConfig
from homeserver.http.outbound import AddressPolicy, OutboundHttpClient
from homeserver.reactor import IServerReactor
from homeserver.storage.database import Database
from homeserver.storage.destinations import DestinationStore


@attrs.frozen
class FederationClient:
    #: Signed requests to other servers.
    http: FederationHttpClient
    #: Which destinations are being backed off from; ``on_destination_up`` callbacks.
    backoff: DestinationBackoff
    agent: MatrixFederationAgent
    well_known_http: OutboundHttpClient

    async def close(self) -> None:
        """Close idle connections (at shutdown)."""
        await self.agent.close()
        await self.well_known_http.close()


def build_federation_client(
    *,
    config: FederationConfig,
    server_name: str,
    reactor: IServerReactor,
    clock: Clock,
    database: Database,
    signing_key: SigningKey,
    dns_resolver: IResolver | None = None,
) -> FederationClient:
    user_agent = f"homeserver/{__version__} (federation)"
    tls = FederationTlsPolicy(
        verify_certificates=config.verify_certificates,
        custom_ca_certificates=load_ca_certificates(config.custom_ca_list),
        minimum_tls_version=config.client_minimum_tls_version,
    )
    well_known_http = OutboundHttpClient(
        reactor,
        ip_blacklist=config.ip_range_blacklist,
        ip_whitelist=config.ip_range_whitelist,
        user_agent=user_agent,
        tls_policy=tls,
    )
    if dns_resolver is None:
        dns_resolver = dns_client.createResolver()  # type: ignore[no-untyped-call]
    resolver = ServerResolver(
        WellKnownResolver(clock, well_known_http), SrvResolver(clock, dns_resolver)
    )
    agent = MatrixFederationAgent(
        reactor,
        resolver,
        tls,
        AddressPolicy(config.ip_range_blacklist, config.ip_range_whitelist),
    )
    backoff = DestinationBackoff(
        DestinationStore(database),
        clock,
        min_interval_ms=config.destination_min_retry_interval_ms,
        multiplier=config.destination_retry_multiplier,
        max_interval_ms=config.destination_max_retry_interval_ms,
    )
    http = FederationHttpClient(
        reactor=reactor,
        agent=agent,
        server_name=server_name,
        signing_key=signing_key,
        backoff=backoff,
        domain_whitelist=(
            None
            if config.federation_domain_whitelist is None
            else frozenset(config.federation_domain_whitelist)
        ),
        user_agent=user_agent,
        default_timeout=config.client_timeout_ms / 1000,
    )
    return FederationClient(
        http=http, backoff=backoff, agent=agent, well_known_http=well_known_http
    )
