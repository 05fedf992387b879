"""An ``IAgent`` for ``matrix-federation://<server name>/<path>`` URIs.

spec: server-server-api.md#tls and #resolving-server-names.  For each request the
server name is resolved (``discovery.py``: ``Host`` header, certificate name,
targets), then the targets are tried in order:

- through the federation address policy (``ip_range_blacklist`` minus
  ``ip_range_whitelist``, the same filtering resolver as every outbound request of
  the server: ``homeserver/http/outbound.py``), so a destination that resolves only to
  blocked addresses fails without a connection being attempted, DNS rebinding
  included;
- over TLS with SNI for the certificate name (none for an IP address, as the spec
  says), the certificate checked against that name and the trust roots: the
  ``federation_custom_ca_list`` certificates when given (they replace the platform's),
  else the platform's; ``federation_verify_certificates: false`` turns the check off
  (for tests only: the peer is then unauthenticated, which the spec forbids for real
  traffic); and at least ``federation_client_minimum_tls_version``.

Connections are kept alive in a pool keyed by server name (the URI's netloc), so
requests to one server reuse its connections whatever it resolved to.

Per-process state: the connection pool, and one TLS context per certificate name
(:data:`TLS_CACHE_SIZE`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from OpenSSL import SSL, crypto
from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import (
    IHostnameResolver,
    IOpenSSLClientConnectionCreator,
    IProtocol,
    IProtocolFactory,
    IReactorPluggableNameResolver,
    IStreamClientEndpoint,
)
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    TLSVersion,
    optionsForClientTLS,
    platformTrust,
    trustRootFromCertificates,
)
from twisted.web.client import URI, Agent
from twisted.web.http_headers import Headers
from twisted.web.iweb import (
    IAgent,
    IAgentEndpointFactory,
    IBodyProducer,
    IPolicyForHTTPS,
    IResponse,
)
from zope.interface import implementer

from federation.client.discovery import InvalidServerName, ServerResolver
from federation.client.pool import FederationConnectionPool
from homeserver.http.outbound import (
    AddressPolicy,
    FilteringReactor,
    FilteringResolver,
    describe_failure,
)
from homeserver.reactor import IServerReactor
from homeserver.util.caches import LruCache

logger = logging.getLogger(__name__)

SCHEME = b"matrix-federation"

#: Idle connections kept per server, and for how long: a busy room sends a
#: transaction every few hundred milliseconds while other requests (backfill, keys,
#: media) run beside it.
MAX_PERSISTENT_PER_SERVER = 5
CACHED_CONNECTION_SECONDS = 120
#: Per target: a server with several SRV targets gets its later ones tried within
#: the request's overall timeout.
CONNECT_TIMEOUT_SECONDS = 15
TLS_CACHE_SIZE = 1_000

_TLS_VERSIONS = {
    "1": TLSVersion.TLSv1_0,
    "1.0": TLSVersion.TLSv1_0,
    "1.1": TLSVersion.TLSv1_1,
    "1.2": TLSVersion.TLSv1_2,
    "1.3": TLSVersion.TLSv1_3,
}


class ConnectFailed(Exception):
    """No connection to any of the destination's targets (the reasons, per target)."""


class DestinationBlocked(ConnectFailed):
    """Every address the destination resolved to is blocked by the address policy."""

    def __init__(self, server_name: str, addresses: Sequence[str]) -> None:
        super().__init__(f"{server_name} resolves only to blocked addresses")
        self.addresses = tuple(addresses)


class NoFederationService(ConnectFailed):
    """The destination's SRV record says it offers no federation (target ``.``)."""


def load_ca_certificates(paths: Sequence[Path]) -> list[Certificate]:
    """Every certificate in the PEM files ``paths`` (a file may hold several).
    Raises ``ValueError`` naming the file that cannot be read."""
    certificates: list[Certificate] = []
    for path in paths:
        try:
            found = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: cannot read CA certificates: {error}") from None
        for cert in found:
            certificates.append(Certificate(crypto.X509.from_cryptography(cert)))  # type: ignore[no-untyped-call]
    return certificates


@implementer(IPolicyForHTTPS)
class FederationTlsPolicy:
    """The TLS client settings of federation, per certificate name.

    Also an ``IPolicyForHTTPS``, for the ``.well-known`` lookups (spec: "normal X.509
    certificate validation", under the same trust as federation itself).
    """

    def __init__(
        self,
        *,
        verify_certificates: bool = True,
        custom_ca_certificates: Sequence[Certificate] = (),
        minimum_tls_version: str = "1.2",
    ) -> None:
        version = _TLS_VERSIONS.get(minimum_tls_version)
        if version is None:
            raise ValueError(f"unknown TLS version {minimum_tls_version!r}")
        self._verify = verify_certificates
        self._trust_root: Any = (
            trustRootFromCertificates(list(custom_ca_certificates))  # type: ignore[no-untyped-call]
            if custom_ca_certificates
            else platformTrust()  # type: ignore[no-untyped-call]
        )
        # Twisted's default floor is TLS 1.2: going below it must be said explicitly.
        self._version_option = (
            {"insecurelyLowerMinimumTo": version}
            if version < TLSVersion.TLSv1_2
            else {"raiseMinimumTo": version}
        )
        self._unverified_options = CertificateOptions(verify=False, **self._version_option)
        self._creators: LruCache[str, IOpenSSLClientConnectionCreator] = LruCache(TLS_CACHE_SIZE)

    def creator_for(self, tls_name: str) -> IOpenSSLClientConnectionCreator:
        """The TLS settings for a connection whose certificate must be valid for
        ``tls_name`` (a hostname or an IP address)."""
        creator = self._creators.get(tls_name)
        if creator is None:
            if self._verify:
                creator = optionsForClientTLS(
                    tls_name,
                    trustRoot=self._trust_root,
                    extraCertificateOptions=dict(self._version_option),
                )
            else:
                creator = _UnverifiedTls(self._unverified_options, tls_name)
            self._creators.set(tls_name, creator)
        return creator

    def creatorForNetloc(self, hostname: bytes, port: int) -> IOpenSSLClientConnectionCreator:
        return self.creator_for(hostname.decode("ascii"))


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedTls:
    """TLS without any certificate check (``federation_verify_certificates: false``),
    still sending SNI so the peer picks the right certificate."""

    def __init__(self, options: CertificateOptions, tls_name: str) -> None:
        self._options = options
        is_address = isIPAddress(tls_name) or isIPv6Address(tls_name)
        self._sni = None if is_address else tls_name.encode("idna")

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self._options.getContext(), None)
        if self._sni is not None:
            connection.set_tlsext_host_name(self._sni)
        return connection


@implementer(IAgent)
class MatrixFederationAgent:
    def __init__(
        self,
        reactor: IServerReactor,
        resolver: ServerResolver,
        tls: FederationTlsPolicy,
        address_policy: AddressPolicy,
        *,
        name_resolver: IHostnameResolver | None = None,
    ) -> None:
        self._resolver = resolver
        self._pool = FederationConnectionPool(reactor, persistent=True)  # type: ignore[no-untyped-call]
        self._pool.maxPersistentPerHost = MAX_PERSISTENT_PER_SERVER
        self._pool.cachedConnectionTimeout = CACHED_CONNECTION_SECONDS
        if name_resolver is None:
            name_resolver = cast(IReactorPluggableNameResolver, reactor).nameResolver
        endpoints = _EndpointFactory(reactor, resolver, tls, address_policy, name_resolver)
        self._agent = Agent.usingEndpointFactory(reactor, endpoints, pool=self._pool)  # type: ignore[no-untyped-call]

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> defer.Deferred[IResponse]:
        """``uri`` is ``matrix-federation://<server name><path>[?query]``."""
        return defer.ensureDeferred(self._request(method, uri, headers, bodyProducer))

    async def _request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None,
        body: IBodyProducer | None,
    ) -> IResponse:
        parsed = URI.fromBytes(uri)  # type: ignore[no-untyped-call]
        if parsed.scheme != SCHEME:
            raise ValueError(f"not a {SCHEME.decode()} URI: {uri!r}")
        server_name = parsed.netloc.decode("ascii")
        resolved = await self._resolver.resolve(server_name)
        headers = Headers() if headers is None else headers.copy()
        headers.setRawHeaders(b"host", [resolved.host_header.encode("ascii")])
        # The pool keys connections by (scheme, host, port), the port defaulting to
        # 80: "example.org" and "example.org:80" are different servers, so a name
        # without a port gets port 0, which no server name can have.
        if not _has_port(parsed.netloc):
            uri = b"%s://%s:0%s" % (SCHEME, parsed.netloc, parsed.originForm)
        response: IResponse = await self._agent.request(method, uri, headers, body)
        return response

    async def close(self) -> None:
        """Close the idle connections (at shutdown, and in tests)."""
        await self._pool.closeCachedConnections()  # type: ignore[no-untyped-call]


def _has_port(netloc: bytes) -> bool:
    # An IPv6 literal's colons are inside its brackets.
    return b":" in netloc.rpartition(b"]")[2]


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    def __init__(
        self,
        reactor: IServerReactor,
        resolver: ServerResolver,
        tls: FederationTlsPolicy,
        address_policy: AddressPolicy,
        name_resolver: IHostnameResolver,
    ) -> None:
        self._reactor = reactor
        self._resolver = resolver
        self._tls = tls
        self._policy = address_policy
        self._name_resolver = name_resolver

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        netloc = uri.netloc.removesuffix(b":0")  # see MatrixFederationAgent._request
        return _FederationEndpoint(self, netloc.decode("ascii"))

    async def connect(self, server_name: str, factory: IProtocolFactory) -> IProtocol:
        try:
            resolved = await self._resolver.resolve(server_name)
        except InvalidServerName as error:
            raise ConnectFailed(str(error)) from None
        if not resolved.targets:
            raise NoFederationService(f"{server_name} offers no federation (SRV target '.')")
        creator = self._tls.creator_for(resolved.tls_name)
        # A resolver per connection, so that what it refused belongs to this attempt.
        filtering = FilteringResolver(self._name_resolver, self._policy)
        reactor = FilteringReactor(self._reactor, filtering)
        failures: list[str] = []
        dns_failures = 0
        for host, port in resolved.targets:
            endpoint = wrapClientTLS(
                creator, HostnameEndpoint(reactor, host, port, timeout=CONNECT_TIMEOUT_SECONDS)
            )
            try:
                protocol: IProtocol = await endpoint.connect(factory)
            except defer.CancelledError:
                raise
            except DNSLookupError as error:
                dns_failures += 1
                failures.append(f"{host}:{port}: {describe_failure(error)}")
            except Exception as error:  # any connection failure: try the next target
                failures.append(f"{host}:{port}: {describe_failure(error)}")
            else:
                return protocol
        if filtering.refused and dns_failures == len(resolved.targets):
            raise DestinationBlocked(server_name, filtering.refused)
        raise ConnectFailed(f"cannot connect to {server_name}: {'; '.join(failures)}")


@implementer(IStreamClientEndpoint)
class _FederationEndpoint:
    def __init__(self, factory: _EndpointFactory, server_name: str) -> None:
        self._factory = factory
        self._server_name = server_name

    def connect(self, protocolFactory: IProtocolFactory) -> defer.Deferred[IProtocol]:
        return defer.ensureDeferred(self._factory.connect(self._server_name, protocolFactory))
