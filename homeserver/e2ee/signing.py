"""Checking the Ed25519 signatures on the key objects clients publish, and the
canonical JSON those signatures cover: one set of rules for device keys, one-time and
fallback keys, and cross-signing keys.

spec: appendices.md#signing-json, client-server-api/modules/end_to_end_encryption.md
"""

from __future__ import annotations

from typing import Any

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from signedjson.types import VerifyKey
from unpaddedbase64 import decode_base64

from homeserver import errors
from homeserver.events.canonical import encode_canonical_json
from homeserver.events.errors import InvalidEventError


def ed25519_verify_key(key_id: str, public_key: str) -> VerifyKey:
    """The Ed25519 key ``public_key`` (unpadded base64) as ``key_id``; 400
    ``M_INVALID_PARAM`` if it is not 32 bytes of base64."""
    try:
        key_bytes = decode_base64(public_key)
        if len(key_bytes) != 32:
            raise ValueError("not 32 bytes")
        return decode_verify_key_bytes(key_id, key_bytes)
    except (ValueError, TypeError):
        raise errors.invalid_param(f"{key_id!r} is not an Ed25519 public key") from None


def verify_signature(value: dict[str, Any], user_id: str, key: VerifyKey, message: str) -> None:
    """``value`` carries a valid signature of ``user_id`` by ``key``; else 400
    ``M_INVALID_SIGNATURE`` with ``message`` (a malformed object cannot verify)."""
    try:
        verify_signed_json(value, user_id, key)
    except (SignatureVerifyException, ValueError, TypeError, KeyError, AttributeError):
        raise errors.invalid_signature(message) from None


def canonical_key_json(value: Any) -> str:
    """The canonical JSON of a key object, as stored and served back byte for byte;
    400 ``M_BAD_JSON`` for what has none (and so cannot have been signed)."""
    try:
        return encode_canonical_json(value).decode("utf-8")
    except InvalidEventError as refused:
        raise errors.bad_json(
            f"The key object cannot be encoded as canonical JSON: {refused}"
        ) from None
