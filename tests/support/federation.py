"""Federating test servers on loopback: a test CA and our server with a TLS federation listener.

Every server in a federation test is named ``localhost:<federation port>`` (or, with
``host="127.0.0.1"``, by that IP literal: server ACLs treat those apart): the explicit
port makes server discovery go straight to that port (no ``.well-known``, no SRV;
spec: server-server-api.md#resolving-server-names), and TLS checks the name
``localhost`` or the address ``127.0.0.1``, which every leaf certificate of the
:class:`TestCA` carries.  The
servers trust only that CA (``federation_custom_ca_list``) and allow loopback
addresses, which the default IP blacklist would refuse.
"""

from __future__ import annotations

import datetime
import http.client as http_client
import ipaddress
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from signedjson.types import SigningKey

from federation.transport.x_matrix import sign_request
from homeserver.crypto.keys import read_signing_key
from tests.support import http
from tests.support.accounts import SHARED_SECRET
from tests.support.matrix import RELAXED_LIMITS
from tests.support.postgres import temporary_database
from tests.support.server_process import REPO_ROOT, ServerProcess, free_port, server_config

#: Loopback addresses, which the default federation IP blacklist refuses.
LOOPBACK_RANGES = ["127.0.0.1/32", "::1/128"]
#: Retry an unreachable test server soon: the catch-up tests take one down and back up.
SHORT_RETRY_INTERVALS = {
    "destination_min_retry_interval": "1s",
    "destination_max_retry_interval": "5s",
}


@attrs.frozen
class TlsPair:
    """A leaf certificate and its private key, as PEM files."""

    certificate_path: Path
    private_key_path: Path


@attrs.frozen
class TestCA:
    """A certificate authority that exists only for one test run.

    ``certificate_path`` is what servers list in ``federation_custom_ca_list``;
    :meth:`issue` signs a leaf certificate for ``localhost`` and ``127.0.0.1``.
    """

    folder: Path
    certificate_path: Path
    _key: ec.EllipticCurvePrivateKey
    _certificate: x509.Certificate

    __test__ = False  # not a pytest test class, despite its name

    @classmethod
    def create(cls, folder: Path) -> TestCA:
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "homeserver federation test CA")])
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        path = folder / "ca.pem"
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(folder, path, key, certificate)

    def issue(self, name: str) -> TlsPair:
        """A leaf certificate for ``DNS:localhost`` and ``IP:127.0.0.1``, written as
        ``<name>.crt.pem`` and ``<name>.key.pem`` in the CA's folder."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        pair = TlsPair(self.folder / f"{name}.crt.pem", self.folder / f"{name}.key.pem")
        pair.certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        pair.private_key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return pair


@contextmanager
def database_section(engine: str, folder: Path) -> Iterator[dict[str, Any]]:
    """A ``database:`` section for a new empty database of ``engine`` ("sqlite" or
    "postgres"), its file in ``folder``: each server of a federation needs its own."""
    if engine == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        yield {"name": "sqlite3", "args": {"database": str(folder / "homeserver.db")}}
        return
    assert engine == "postgres", engine
    with temporary_database() as args:
        yield {"name": "psycopg2", "args": {**args, "cp_min": 1, "cp_max": 4}}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@attrs.frozen
class FederatedServer:
    """One of our servers in a federation test: its process and the names it goes by."""

    process: ServerProcess
    #: ``localhost:<federation port>`` (or ``127.0.0.1:<port>``): the server name, in
    #: every user and room ID.
    server_name: str
    federation_port: int
    #: ``https://localhost:<federation port>``: where other servers reach it.
    federation_url: str
    #: The server's ed25519 key file: a test signs requests as this server with it.
    signing_key_path: Path

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def signing_key(self) -> SigningKey:
        return read_signing_key(self.signing_key_path)


def tls_context(ca: TestCA) -> ssl.SSLContext:
    """A client TLS context that trusts only the test CA (and checks names)."""
    return ssl.create_default_context(cafile=str(ca.certificate_path))


def federation_request(
    ca: TestCA,
    destination: FederatedServer,
    method: str,
    path: str,
    *,
    body: Any = None,
    origin: str | None = None,
    signing_key: SigningKey | None = None,
    authorization: str | None = None,
    timeout: float = 30.0,
) -> http.Response:
    """One request to ``destination``'s federation listener over TLS.

    With ``origin`` and ``signing_key`` it carries an X-Matrix ``Authorization``
    header signed by that key (the real one of a server, or a forger's);
    ``authorization`` sends a header value as given instead.  ``path`` is the
    percent-encoded request target, as signed.
    spec: server-server-api.md#request-authentication
    """
    headers: dict[str, str] = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif origin is not None:
        assert signing_key is not None, "an origin signs with a key"
        headers["Authorization"] = sign_request(
            signing_key,
            origin=origin,
            destination=destination.server_name,
            method=method,
            uri=path,
            content=body,
        )
    payload = None if body is None else json.dumps(body).encode("utf-8")
    if payload is not None:
        headers["Content-Type"] = "application/json"
    conn = http_client.HTTPSConnection(
        "localhost", destination.federation_port, timeout=timeout, context=tls_context(ca)
    )
    try:
        conn.request(method, path, body=payload, headers=headers)
        reply = conn.getresponse()
        return http.Response(
            status=reply.status,
            headers={name.lower(): value for name, value in reply.getheaders()},
            body=reply.read(),
        )
    finally:
        conn.close()


def federated_server_config(
    folder: Path,
    database_config: dict[str, Any],
    ca: TestCA,
    *,
    name: str,
    client_port: int,
    federation_port: int,
    host: str = "localhost",
    **overrides: Any,
) -> dict[str, Any]:
    """The config of our server federating on loopback over TLS, named
    ``<host>:<federation_port>`` (``host`` is ``localhost`` or ``127.0.0.1``, the
    names the certificates carry).

    The client listener (plain HTTP) comes first: :class:`ServerProcess` probes the
    first listener for health.
    """
    assert host in ("localhost", "127.0.0.1"), host
    pair = ca.issue(name)
    server_name = f"{host}:{federation_port}"
    settings: dict[str, Any] = {
        "server_name": server_name,
        "public_baseurl": f"http://127.0.0.1:{client_port}/",
        "signing_key_path": str(folder / f"{name}.signing.key"),
        "registration_shared_secret": SHARED_SECRET,
        "enable_registration": True,
        "enable_registration_without_verification": True,
        **RELAXED_LIMITS,
        "tls_certificate_path": str(pair.certificate_path),
        "tls_private_key_path": str(pair.private_key_path),
        "federation_custom_ca_list": [str(ca.certificate_path)],
        "ip_range_whitelist": list(LOOPBACK_RANGES),
        "trusted_key_servers": [],
        "federation": dict(SHORT_RETRY_INTERVALS),
    }
    settings.update(overrides)
    config = server_config(folder, database_config, client_port, **settings)
    config["listeners"].append(
        {
            "port": federation_port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": True,
            "resources": [{"names": ["federation"]}],
        }
    )
    return config


@contextmanager
def federated_server(
    tmp_path: Path,
    database_config: dict[str, Any],
    ca: TestCA,
    *,
    name: str = "ours",
    start: bool = True,
    host: str = "localhost",
    **overrides: Any,
) -> Iterator[FederatedServer]:
    """Our server, federating over TLS on loopback, in the folder ``tmp_path/name``,
    named ``<host>:<federation port>`` (``localhost`` or the IP literal ``127.0.0.1``).

    ``overrides`` replace top-level config keys.  The server is stopped on exit.
    ``start=False`` hands it over unstarted (to change its config first, say).
    """
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    federation_port = free_port()
    config = federated_server_config(
        folder,
        database_config,
        ca,
        name=name,
        client_port=free_port(),
        federation_port=federation_port,
        host=host,
        **overrides,
    )
    process = ServerProcess(folder, config)
    server = FederatedServer(
        process=process,
        server_name=config["server_name"],
        federation_port=federation_port,
        federation_url=f"https://{host}:{federation_port}",
        signing_key_path=Path(config["signing_key_path"]),
    )
    if start:
        process.start()
    try:
        yield server
    finally:
        process.stop()


def run_client_script(
    module: str,
    home: FederatedServer,
    away: FederatedServer,
    *,
    leading: Sequence[str] = (),
    timeout: float,
) -> dict[str, Any]:
    """Run the client script ``python -m module *leading home-url away-url home-name``
    (real crypto clients, say, which need their own process and event loop) and
    return the JSON object its last line of output prints.

    A failed run fails the test with the script's stderr and both servers' log
    tails: what went wrong is usually on the server side.
    """
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            module,
            *leading,
            home.process.base_url,
            away.process.base_url,
            home.server_name,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (
        done.stderr[-5000:]
        + f"\n--- {home.server_name} ---\n"
        + home.process.log()[-10_000:]
        + f"\n--- {away.server_name} ---\n"
        + away.process.log()[-10_000:]
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
