"""The TLS context of HTTPS listeners, from PEM files (Synapse's
``tls_certificate_path`` and ``tls_private_key_path``).

Federation listeners serve HTTPS themselves: other servers connect to port 8448
with TLS and check the certificate against the server name.  Certificates expire
(Let's Encrypt's after 90 days): :class:`ReloadableServerTls` reads the files again
on :meth:`~ReloadableServerTls.reload` (on SIGHUP, as Synapse), and new connections
get the new certificate; a broken new pair is refused and the old one kept.

spec: server-server-api.md#tls
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer

from homeserver.config.model import HomeServerConfig

logger = logging.getLogger(__name__)


class TlsFilesError(Exception):
    """The certificate or key cannot be used; the message says which file and why."""


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableServerTls:
    """The TLS of HTTPS listeners (``TLSMemoryBIOFactory`` asks it for each
    connection), whose certificate can be read again."""

    def __init__(self, certificate_path: Path, private_key_path: Path) -> None:
        self._certificate_path = certificate_path
        self._private_key_path = private_key_path
        self._options = server_tls_options(certificate_path, private_key_path)

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection: SSL.Connection = self._options.serverConnectionForTLS(tlsProtocol)
        return connection

    def getContext(self) -> SSL.Context:
        return self._options.getContext()

    def reload(self) -> bool:
        """Read the files again; on a problem keep serving the old pair (logged).
        Whether the new pair is served."""
        try:
            self._options = server_tls_options(self._certificate_path, self._private_key_path)
        except TlsFilesError as error:
            logger.error("TLS certificate not reloaded, the old one stays: %s", error)
            return False
        logger.info("TLS certificate reloaded from %s", self._certificate_path)
        return True


def reloadable_listener_tls(config: HomeServerConfig) -> ReloadableServerTls | None:
    """The certificate of ``tls: true`` listeners, reloadable; None when no listener
    serves HTTPS.  The config parser made sure both paths are set when one does."""
    if not any(listener.tls for listener in config.listeners):
        return None
    certificate, key = (
        config.federation.tls_certificate_path,
        config.federation.tls_private_key_path,
    )
    assert certificate is not None and key is not None
    return ReloadableServerTls(certificate, key)


def server_tls_options(certificate_path: Path, private_key_path: Path) -> ssl.CertificateOptions:
    """Options serving the certificate chain in ``certificate_path`` (leaf first,
    then intermediates) with the private key in ``private_key_path``.

    Raises :class:`TlsFilesError` for an unreadable or invalid file, or a key that
    does not belong to the certificate.  TLS 1.2 at least, as Synapse.
    """
    chain = _read_chain(certificate_path)
    key = _read_key(private_key_path)
    # Twisted hands these to pyOpenSSL as they are; pyOpenSSL takes cryptography's
    # objects (its own wrappers are deprecated), which Twisted's hints predate.
    options = ssl.CertificateOptions(
        privateKey=key,  # type: ignore[arg-type]
        certificate=chain[0],  # type: ignore[arg-type]
        extraCertChain=chain[1:],  # type: ignore[arg-type]
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )
    try:
        # Built now, so a key that does not match the certificate stops start-up.
        options.getContext()
    except SSL.Error as error:
        raise TlsFilesError(
            f"{private_key_path} is not the private key of the certificate in "
            f"{certificate_path} ({_openssl_reason(error)})"
        ) from None
    return options


def _read_chain(path: Path) -> list[x509.Certificate]:
    data = _read(path, "certificate")
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise TlsFilesError(f"{path} holds no PEM certificate ({error})") from None
    return chain


#: The key types a TLS certificate is made with that pyOpenSSL can use.
_TlsKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)


def _read_key(path: Path) -> _TlsKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        # TypeError: the key is encrypted (a passphrase we do not have).
        raise TlsFilesError(f"{path} holds no unencrypted PEM private key ({error})") from None
    if not isinstance(key, _TlsKey):
        raise TlsFilesError(f"{path}: a {type(key).__name__} cannot serve TLS")
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TlsFilesError(f"cannot read the TLS {what} {path}: {error.strerror}") from None


def _openssl_reason(error: SSL.Error) -> str:
    details = error.args[0] if error.args else []
    if isinstance(details, list) and details and isinstance(details[-1], tuple):
        return str(details[-1][-1])
    return str(error)
