"""The server's VAPID key (RFC 8292): the P-256 key pair that identifies this server
to Web Push services.  Clients subscribe with its public key (advertised as the
``m.webpush`` capability, MSC4174), and push services accept only requests whose
``Authorization: vapid`` JWT it signed.

The key is made once and kept: in the database by default (one key for every process
of the server), or in a PEM file named by ``webpush.vapid_private_key_path`` (created
if missing).  Changing it orphans every existing subscription: push services refuse
requests signed by another key, and those pushers are removed as they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from twisted.internet import threads
from unpaddedbase64 import encode_base64

from homeserver.clock import Clock
from homeserver.pushers.urls import origin
from homeserver.storage.pushers import PusherStore
from homeserver.util.caches import LruCache

#: How long a signed JWT is valid (RFC 8292 §2: at most 24 hours).
JWT_LIFETIME_S = 12 * 3600
#: A header is signed again when its JWT has less than this left (a push service's
#: clock may be ahead of ours).
REFRESH_BEFORE_EXPIRY_S = 3600
#: Push services (audiences) whose header is kept: browsers use a handful.
MAX_AUDIENCES = 1_000


class VapidKey:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey, contact: str) -> None:
        self._vapid = Vapid02(private_key=private_key, conf={"no-strict": True})
        self._contact = contact
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        #: The public key, uncompressed, URL-safe base64 without padding (MSC4174).
        self.public_key = encode_base64(raw, urlsafe=True)
        #: Audience -> (header, its JWT's ``exp``): one signature per push service for
        #: hours, not one per message.
        self._headers: LruCache[str, tuple[str, int]] = LruCache(MAX_AUDIENCES)

    def authorization(self, endpoint: str, now_s: float) -> str:
        """The ``Authorization`` header for a request to ``endpoint`` (RFC 8292 §3:
        ``aud`` is the push resource's origin, RFC 6454)."""
        audience = origin(endpoint)
        cached = self._headers.get(audience)
        if cached is not None and now_s < cached[1] - REFRESH_BEFORE_EXPIRY_S:
            return cached[0]
        expires = int(now_s) + JWT_LIFETIME_S
        claims = {"aud": audience, "exp": expires, "sub": self._contact}
        header: str = self._vapid.sign(claims)["Authorization"]
        self._headers.set(audience, (header, expires))
        return header


def _pem(private_key: ec.EllipticCurvePrivateKey) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _from_pem(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the VAPID key must be a P-256 (prime256v1) EC private key")
    return key


def _load_or_create_file(path: Path) -> str:
    if path.exists():
        return path.read_text("ascii")
    pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written readable by the owner only, like the signing key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(pem)
    return pem


async def load_vapid_key(
    store: PusherStore, clock: Clock, *, path: Path | None, contact: str
) -> VapidKey:
    if path is not None:
        pem = await threads.deferToThread(_load_or_create_file, path)
    else:
        candidate = _pem(ec.generate_private_key(ec.SECP256R1()))
        pem = await store.get_or_store_vapid_key(candidate, now=clock.time_msec())
    return VapidKey(_from_pem(pem), contact)
