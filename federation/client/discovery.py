"""Resolving a server name to where to connect, what to put in ``Host`` and which
name the TLS certificate must be valid for.

spec: server-server-api.md#resolving-server-names — the steps, in order:

1. IP literal: that address, its port or 8448; certificate for the IP address.
2. Hostname with an explicit port: its A/AAAA records, that port; certificate for
   the hostname.
3. Otherwise ``https://<hostname>/.well-known/matrix/server`` (``well_known.py``).  If
   it delegates to ``<delegated>[:<port>]``: 3.1 IP literal; 3.2 hostname with port;
   3.3 SRV ``_matrix-fed._tcp.<delegated>``; 3.4 (deprecated) SRV
   ``_matrix._tcp.<delegated>``; 3.5 ``<delegated>:8448``.  ``Host`` and the
   certificate name are ``<delegated>`` (with the port in ``Host`` if one was given).
4.-6. Without delegation: SRV ``_matrix-fed._tcp.<hostname>``, then
   ``_matrix._tcp.<hostname>``, then ``<hostname>:8448``; ``Host`` and the
   certificate name are ``<hostname>`` (never an SRV target: DNS is not secure, so
   the target must prove with its certificate that it serves ``<hostname>``).

Targets are hostnames or addresses; turning hostnames into addresses (and refusing
blocked ones) is the agent's job (``agent.py``), so the address policy applies at
the moment of connecting.
"""

from __future__ import annotations

import attrs

from federation.client.srv import SrvResolver
from federation.client.well_known import WellKnownResolver
from federation.identifiers import ip_literal
from homeserver.identifiers import parse_server_name

DEFAULT_FEDERATION_PORT = 8448


class InvalidServerName(ValueError):
    """The name is not a server name (spec: appendices.md#server-name)."""


@attrs.frozen
class ResolvedServer:
    #: The ``Host`` header to send.
    host_header: str
    #: The name the certificate must be valid for: a hostname, or an IP address
    #: (without brackets; no SNI is sent for those).
    tls_name: str
    #: ``(host, port)`` to try in order; a host is a hostname or an IP address without
    #: brackets.  Empty when the server says it offers no federation (SRV target ".").
    targets: tuple[tuple[str, int], ...]


class ServerResolver:
    def __init__(self, well_known: WellKnownResolver, srv: SrvResolver) -> None:
        self._well_known = well_known
        self._srv = srv

    async def resolve(self, server_name: str) -> ResolvedServer:
        """Where to reach ``server_name``; :class:`InvalidServerName` if it is not one."""
        try:
            host, port = parse_server_name(server_name)
        except ValueError as error:
            raise InvalidServerName(str(error)) from None
        literal = ip_literal(host)
        if literal is not None:  # step 1
            return ResolvedServer(
                server_name, literal, ((literal, port or DEFAULT_FEDERATION_PORT),)
            )
        if port is not None:  # step 2
            return ResolvedServer(server_name, host, ((host, port),))
        delegated = await self._well_known.delegated_server(host)  # step 3
        if delegated is None:
            return await self._without_port(host)  # steps 4-6
        delegated_host, delegated_port = parse_server_name(delegated)  # checked when fetched
        literal = ip_literal(delegated_host)
        if literal is not None:  # step 3.1
            return ResolvedServer(
                delegated, literal, ((literal, delegated_port or DEFAULT_FEDERATION_PORT),)
            )
        if delegated_port is not None:  # step 3.2
            return ResolvedServer(delegated, delegated_host, ((delegated_host, delegated_port),))
        return await self._without_port(delegated_host)  # steps 3.3-3.5

    async def _without_port(self, host: str) -> ResolvedServer:
        targets = await self._srv.targets(f"_matrix-fed._tcp.{host}")
        if targets is None:
            # Deprecated by the spec, still published by many servers.
            targets = await self._srv.targets(f"_matrix._tcp.{host}")
        if targets is None:
            targets = ((host, DEFAULT_FEDERATION_PORT),)
        return ResolvedServer(host, host, targets)
