"""Our own keys: the signed ``/_matrix/key/v2/server`` response, and the keys the
keyring uses to check our own signatures without asking anyone.

The response lists the signing key as the one current key and the configured
``old_signing_keys`` with their ``expired_ts``; it is valid for
``key_refresh_interval`` from when it is signed.  It is signed once and kept, and
signed again when half of its validity has passed, so a notary that caches it for
half its lifetime (as keys_server.yaml asks) never serves one that has expired, and
no response goes out expiring in less than an hour unless the interval is under
two hours.

spec: server-server-api.md#publishing-keys
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from signedjson.key import encode_verify_key_base64, get_verify_key
from signedjson.sign import sign_json
from signedjson.types import SigningKey, VerifyKey

from federation.keys.responses import decode_public_key
from homeserver.clock import Clock

#: The validity of our current key as the keyring sees it: it never expires while
#: we sign with it.
FOREVER_TS = 2**63 - 1


class OldSigningKeyConfig(Protocol):
    """One entry of ``old_signing_keys`` (``homeserver.config.federation.OldSigningKey``)."""

    @property
    def key_id(self) -> str: ...
    @property
    def public_key(self) -> str: ...
    @property
    def expired_ts(self) -> int: ...


class LocalServerKeys:
    def __init__(
        self,
        *,
        server_name: str,
        signing_key: SigningKey,
        old_signing_keys: Sequence[OldSigningKeyConfig],
        key_refresh_interval_ms: int,
        clock: Clock,
    ) -> None:
        """``ValueError`` if an old key is not a valid ed25519 public key."""
        self._server_name = server_name
        self._signing_key = signing_key
        self._refresh_interval_ms = key_refresh_interval_ms
        self._clock = clock
        current_id = f"{signing_key.alg}:{signing_key.version}"
        self._key_id = current_id
        self._verify_key: VerifyKey = get_verify_key(signing_key)
        #: key ID -> (public key, expired_ts); the current key is never "old".
        self._old_keys: dict[str, tuple[VerifyKey, int]] = {
            old.key_id: (decode_public_key(old.key_id, old.public_key), old.expired_ts)
            for old in old_signing_keys
            if old.key_id != current_id
        }
        self._response: dict[str, Any] | None = None
        self._signed_at_ms = 0

    @property
    def server_name(self) -> str:
        return self._server_name

    @property
    def signing_key(self) -> SigningKey:
        return self._signing_key

    @property
    def key_id(self) -> str:
        """The current key's ID, ``ed25519:<version>``."""
        return self._key_id

    def server_keys_response(self) -> dict[str, Any]:
        """The signed ``/_matrix/key/v2/server`` body (a fresh copy: callers may add
        signatures to it)."""
        now = self._clock.time_msec()
        if self._response is None or now >= self._signed_at_ms + self._refresh_interval_ms // 2:
            self._response = self._signed_response(now)
            self._signed_at_ms = now
        return copy.deepcopy(self._response)

    def verify_keys(self) -> Mapping[str, tuple[VerifyKey, int]]:
        """Key ID -> (public key, valid until): the current key valid for ever, old
        keys until their ``expired_ts``."""
        return {**self._old_keys, self._key_id: (self._verify_key, FOREVER_TS)}

    def _signed_response(self, now: int) -> dict[str, Any]:
        response: dict[str, Any] = {
            "server_name": self._server_name,
            "verify_keys": {self._key_id: {"key": encode_verify_key_base64(self._verify_key)}},
            "old_verify_keys": {
                key_id: {"key": encode_verify_key_base64(key), "expired_ts": expired_ts}
                for key_id, (key, expired_ts) in self._old_keys.items()
            },
            "valid_until_ts": now + self._refresh_interval_ms,
        }
        signed: dict[str, Any] = sign_json(response, self._server_name, self._signing_key)
        return signed
