"""A TLS listener serves the whole certificate chain of its file (leaf, then
intermediates), so that other servers that only trust the root accept it, as with
certificates from a public CA.

spec: server-server-api.md#tls
"""

from __future__ import annotations

import datetime
import http.client
import json
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.server_process import ServerProcess, free_port, server_config

NOW = datetime.datetime.now(datetime.UTC)


def issue(
    subject: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer is not None else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(hours=1))
        .not_valid_after(NOW + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
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
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_the_intermediate_certificates_are_served_with_the_leaf(tmp_path: Path) -> None:
    root, root_key = issue("Test Root CA", None, ca=True)
    intermediate, intermediate_key = issue("Test Intermediate", (root.subject, root_key), ca=True)
    leaf, leaf_key = issue("localhost", (intermediate.subject, intermediate_key), ca=False)
    (tmp_path / "chain.pem").write_bytes(pem(leaf) + pem(intermediate))
    (tmp_path / "key.pem").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "root.pem").write_bytes(pem(root))
    federation_port = free_port()
    database = {"name": "sqlite3", "args": {"database": str(tmp_path / "homeserver.db")}}
    config = server_config(
        tmp_path,
        database,
        free_port(),
        tls_certificate_path=str(tmp_path / "chain.pem"),
        tls_private_key_path=str(tmp_path / "key.pem"),
    )
    config["listeners"].append(
        {
            "port": federation_port,
            "tls": True,
            "bind_addresses": ["127.0.0.1"],
            "resources": [{"names": ["federation"]}],
        }
    )
    server = ServerProcess(tmp_path, config)
    server.start()
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "root.pem"))
        connection = http.client.HTTPSConnection(
            "localhost", federation_port, context=context, timeout=30
        )
        try:
            connection.request("GET", "/_matrix/federation/v1/version")
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["server"]["name"] == "homeserver"
        finally:
            connection.close()
    finally:
        server.stop()
