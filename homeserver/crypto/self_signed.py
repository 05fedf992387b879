"""A self-signed TLS certificate for a server name (``generate-config --self-signed-tls``).

Good for test federations, where each server trusts the others' certificates
explicitly (``federation_custom_ca_list``) or does not check them
(``federation_verify_certificates: false``); a public server needs a certificate
from a CA that other servers trust.

spec: server-server-api.md#tls
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from homeserver.identifiers import parse_server_name

VALIDITY = datetime.timedelta(days=365)


def self_signed_certificate(
    server_name: str, *, now: datetime.datetime | None = None
) -> tuple[bytes, bytes]:
    """A PEM certificate valid for a year for the host part of ``server_name``, and
    its PEM private key (P-256)."""
    host, _port = parse_server_name(server_name)
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host.strip("[]"))])
    san: x509.GeneralName
    try:
        san = x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        san = x509.DNSName(host)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # An hour back: clocks of the servers that check it may be a little behind.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def write_self_signed_certificate(server_name: str, certificate_path: Path, key_path: Path) -> None:
    """Write a new pair; the key readable by the owner only.  Existing files are
    never overwritten (``FileExistsError``)."""
    certificate, key = self_signed_certificate(server_name)
    for path, data, mode in ((key_path, key, 0o600), (certificate_path, certificate, 0o644)):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
