"""A small offline internet for the outbound client's tests.

- :class:`TestCA`: a throw-away certificate authority issuing leaf certificates for
  any names (``tests/support/federation.py``'s CA issues only ``localhost``; these
  tests need ``wk.test``, ``delegated.test`` ...).
- :class:`TlsSite`: a real HTTPS server on 127.0.0.1 that records what it receives
  and answers per path (see :meth:`TlsSite.answer`).
- :class:`LoopbackNetwork`: the real reactor with a name resolver serving fixed
  names (no DNS offline) and a port map (``.well-known`` is fetched on port 443,
  which a test cannot listen on: 443 is mapped to the test site's port).
- :class:`SrvRecords`: an ``IResolver`` answering SRV queries from memory.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import defer, ssl
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IListeningPort,
    IResolutionReceiver,
    IResolver,
)
from twisted.names import dns
from twisted.names import error as dns_error
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer

from homeserver.http.outbound import FilteringReactor
from homeserver.reactor import IServerReactor, installed_reactor

Handler = Callable[[Any, bytes], bytes | int]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@attrs.frozen
class TestCA:
    folder: Path
    certificate_path: Path
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    __test__ = False

    @classmethod
    def create(cls, folder: Path, name: str = "test CA") -> TestCA:
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(hours=1))
            .not_valid_after(_now() + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        path = folder / f"{name.replace(' ', '_')}.pem"
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(folder, path, key, certificate)

    def server_options(
        self, names: Sequence[str], *, max_tls: ssl.TLSVersion | None = None
    ) -> ssl.CertificateOptions:
        """TLS server settings with a leaf certificate for ``names`` (hostnames or IP
        addresses), speaking at most ``max_tls`` if given."""
        key = ec.generate_private_key(ec.SECP256R1())
        alternative: list[x509.GeneralName] = []
        for name in names:
            try:
                alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternative.append(x509.DNSName(name))
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(hours=1))
            .not_valid_after(_now() + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        from OpenSSL import crypto

        extra: dict[str, Any] = {} if max_tls is None else {"lowerMaximumSecurityTo": max_tls}
        return ssl.CertificateOptions(
            privateKey=crypto.PKey.from_cryptography_key(key),
            certificate=crypto.X509.from_cryptography(leaf),
            **extra,
        )


@attrs.define
class Received:
    method: str
    #: The request target as received (path and query).
    uri: str
    headers: dict[str, str]
    body: bytes


class _Handler(Resource):
    isLeaf = True

    def __init__(self, site: TlsSite) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._site = site

    def render(self, request: Any) -> bytes | int:
        body = request.content.read()
        headers = {
            name.decode("latin-1").lower(): b", ".join(values).decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        uri = request.uri.decode("ascii")
        self._site.received.append(Received(request.method.decode(), uri, headers, body))
        path = request.path.decode("ascii")
        handler = self._site.routes.get(path)
        if handler is None:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"application/json")
            return b'{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}'
        return handler(request, body)


@attrs.define
class TlsSite:
    """An HTTPS server on 127.0.0.1 (``port``); ``routes`` maps paths to handlers
    ``(request, body) -> bytes | NOT_DONE_YET``."""

    port: int = 0
    listening: IListeningPort | None = None
    received: list[Received] = attrs.Factory(list)
    routes: dict[str, Handler] = attrs.Factory(dict)

    @classmethod
    def start(
        cls, ca: TestCA, names: Sequence[str], *, max_tls: ssl.TLSVersion | None = None
    ) -> TlsSite:
        site = cls()
        factory: Any = Site(_Handler(site))  # type: ignore[no-untyped-call]
        listening = installed_reactor().listenSSL(  # type: ignore[attr-defined]
            0, factory, ca.server_options(names, max_tls=max_tls), interface="127.0.0.1"
        )
        site.listening = listening
        address = listening.getHost()
        assert isinstance(address, IPv4Address)
        site.port = address.port
        return site

    async def stop(self) -> None:
        """Stop listening (again: a no-op)."""
        listening, self.listening = self.listening, None
        if listening is not None:
            await defer.maybeDeferred(listening.stopListening)

    def json(self, path: str, value: object, status: int = 200, **headers: str) -> None:
        encoded = json.dumps(value).encode()

        def answer(request: Any, body: bytes) -> bytes:
            request.setResponseCode(status)
            request.setHeader(b"Content-Type", b"application/json")
            for name, header in headers.items():
                request.setHeader(name.replace("_", "-").encode(), header.encode())
            return encoded

        self.routes[path] = answer

    def raw(self, path: str, payload: bytes, status: int = 200) -> None:
        def answer(request: Any, body: bytes) -> bytes:
            request.setResponseCode(status)
            return payload

        self.routes[path] = answer

    def never_answer(self, path: str) -> None:
        self.routes[path] = lambda request, body: NOT_DONE_YET


@implementer(IHostResolution)
@attrs.define
class _Resolution:
    name: str

    def cancel(self) -> None:
        pass


@implementer(IHostnameResolver)
class StaticNames:
    """Host names → IPv4 addresses from a table; IP literals resolve to themselves."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        self.lookups: list[str] = []

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        self.lookups.append(hostName)
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        try:
            ipaddress.IPv4Address(hostName)
            address: str | None = hostName
        except ValueError:
            address = self.names.get(hostName)
        if address is not None:
            resolutionReceiver.addressResolved(IPv4Address("TCP", address, portNumber))
        resolutionReceiver.resolutionComplete()
        return resolution


class LoopbackNetwork(FilteringReactor):
    """The real reactor, resolving names with :class:`StaticNames` and connecting to
    ``port_map[port]`` instead of ``port`` when mapped."""

    def __init__(self, names: Mapping[str, str], port_map: Mapping[int, int] | None = None) -> None:
        self.names = StaticNames(names)
        super().__init__(installed_reactor(), self.names)
        self.port_map = dict(port_map or {})

    def connectTCP(
        self, host: str, port: int, factory: Any, timeout: float = 30, bindAddress: Any = None
    ) -> Any:
        return installed_reactor().connectTCP(
            host, self.port_map.get(port, port), factory, timeout, bindAddress
        )

    def as_server_reactor(self) -> IServerReactor:
        return cast(IServerReactor, self)


class SrvRecords:
    """An ``IResolver`` whose only skill is SRV: ``records[name]`` is a list of
    ``(priority, weight, port, target)``, or an exception to raise."""

    def __init__(
        self,
        records: Mapping[str, Sequence[tuple[int, int, int, str]] | Exception] | None = None,
        ttl: int = 300,
    ) -> None:
        self.records: dict[str, Sequence[tuple[int, int, int, str]] | Exception] = dict(
            records or {}
        )
        self.ttl = ttl
        self.queries: list[str] = []

    def lookupService(self, name: str, timeout: object = None) -> defer.Deferred[Any]:
        self.queries.append(name)
        found = self.records.get(name)
        if isinstance(found, Exception):
            return defer.fail(found)
        if found is None:
            return defer.fail(dns_error.DNSNameError(name))
        answers = [
            dns.RRHeader(
                name=name,
                type=dns.SRV,
                ttl=self.ttl,
                payload=dns.Record_SRV(priority, weight, port, target.encode(), ttl=self.ttl),  # type: ignore[no-untyped-call]
            )
            for priority, weight, port, target in found
        ]
        return defer.succeed((answers, [], []))

    def as_resolver(self) -> IResolver:
        return cast(IResolver, self)
