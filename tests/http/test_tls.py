"""HTTPS listeners' certificate files (``tls_certificate_path``/``tls_private_key_path``)
and the self-signed pair ``generate-config --self-signed-tls`` writes.

spec: server-server-api.md#tls
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from homeserver.crypto.self_signed import self_signed_certificate, write_self_signed_certificate
from homeserver.http.tls import ReloadableServerTls, TlsFilesError, server_tls_options


def write_pair(folder: Path, server_name: str = "example.org") -> tuple[Path, Path]:
    certificate, key = folder / "tls.crt", folder / "tls.key"
    write_self_signed_certificate(server_name, certificate, key)
    return certificate, key


def test_a_generated_pair_makes_a_server_context(tmp_path: Path) -> None:
    certificate, key = write_pair(tmp_path)
    assert server_tls_options(certificate, key).getContext() is not None
    assert key.stat().st_mode & 0o777 == 0o600


def test_the_certificate_names_the_host_of_the_server_name_for_a_year() -> None:
    pem, _ = self_signed_certificate("chat.example.org:8448")
    certificate = x509.load_pem_x509_certificate(pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["chat.example.org"]
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert 365 <= lifetime.days <= 366


def test_an_ip_literal_server_name_gets_an_ip_address_name() -> None:
    pem, _ = self_signed_certificate("[::1]:8448")
    certificate = x509.load_pem_x509_certificate(pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("::1")]


def test_existing_files_are_never_overwritten(tmp_path: Path) -> None:
    write_pair(tmp_path)
    with pytest.raises(FileExistsError):
        write_pair(tmp_path)


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    certificate, _ = write_pair(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = write_pair(other)
    with pytest.raises(TlsFilesError, match="is not the private key of the certificate"):
        server_tls_options(certificate, other_key)


def test_a_file_that_is_not_pem_is_refused_naming_it(tmp_path: Path) -> None:
    certificate, key = write_pair(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    with pytest.raises(TlsFilesError, match=f"{junk} holds no PEM certificate"):
        server_tls_options(junk, key)
    with pytest.raises(TlsFilesError, match=f"{junk} holds no unencrypted PEM private key"):
        server_tls_options(certificate, junk)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    _, key = write_pair(tmp_path)
    with pytest.raises(TlsFilesError, match="cannot read the TLS certificate"):
        server_tls_options(tmp_path / "absent.crt", key)


def test_an_encrypted_key_is_refused(tmp_path: Path) -> None:
    certificate, key = write_pair(tmp_path)
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(TlsFilesError, match="no unencrypted PEM private key"):
        server_tls_options(certificate, encrypted)


def _served_certificate(tls: ReloadableServerTls) -> x509.Certificate:
    # The context each new connection is made with (CertificateOptions makes
    # serverConnectionForTLS's connections from it).
    certificate = SSL.Connection(tls.getContext(), None).get_certificate()
    assert certificate is not None
    return certificate.to_cryptography()


def test_a_reload_serves_the_new_certificate_and_a_broken_one_is_refused(
    tmp_path: Path,
) -> None:
    certificate, key = write_pair(tmp_path, "old.example.org")
    tls = ReloadableServerTls(certificate, key)
    first = _served_certificate(tls)
    # The certificate is renewed in place (e.g. by certbot).
    new_certificate, new_key = self_signed_certificate("new.example.org")
    certificate.write_bytes(new_certificate)
    key.write_bytes(new_key)
    assert tls.reload()
    renewed = _served_certificate(tls)
    assert renewed != first
    assert renewed.subject.rfc4514_string().endswith("new.example.org")
    # A half-written renewal is not served: the previous pair stays.
    key.write_bytes(b"not a key")
    assert not tls.reload()
    assert _served_certificate(tls) == renewed
