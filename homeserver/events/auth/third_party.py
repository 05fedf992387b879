"""Checking the signed token of a third-party invite against the room's public keys.

spec: rooms/v12.md#authorisation-rules rule 5.4.1.7 ("If any signature in ``signed``
matches any public key in the ``m.room.third_party_invite`` event, allow"),
server-server-api.md#verifying-the-invite, appendices.md#checking-for-a-signature
"""

from __future__ import annotations

from collections.abc import Iterator

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from unpaddedbase64 import decode_base64


def third_party_invite_public_keys(content: object) -> list[str]:
    """The base64 public keys of an ``m.room.third_party_invite`` content.

    Both the single ``public_key`` and every ``public_keys[].public_key`` count.
    """
    if not isinstance(content, dict):
        return []
    keys: list[str] = []
    single = content.get("public_key")
    if isinstance(single, str):
        keys.append(single)
    many = content.get("public_keys")
    if isinstance(many, list):
        for entry in many:
            if isinstance(entry, dict) and isinstance(entry.get("public_key"), str):
                keys.append(entry["public_key"])
    return keys


def _signatures(signed: dict[str, object]) -> Iterator[tuple[str, str]]:
    """``(signing entity, key ID)`` of every ed25519 signature on ``signed``."""
    signatures = signed.get("signatures")
    if not isinstance(signatures, dict):
        return
    for entity, by_key in signatures.items():
        if not isinstance(by_key, dict):
            continue
        for key_id in by_key:
            # Only ed25519 is defined for these keys (the schema says so).
            if isinstance(key_id, str) and key_id.startswith("ed25519:"):
                yield entity, key_id


def signed_token_matches_keys(signed: dict[str, object], invite_content: object) -> bool:
    """Whether any signature on ``signed`` verifies under any of the invite's keys.

    The key ID in ``signatures`` only names the key; the key material comes from the
    room's ``m.room.third_party_invite`` event, so every key is tried with every
    signature.  Any failure to decode or verify just means "no match".
    """
    public_keys = third_party_invite_public_keys(invite_content)
    if not public_keys:
        return False
    for entity, key_id in _signatures(signed):
        for public_key in public_keys:
            try:
                verify_key = decode_verify_key_bytes(key_id, decode_base64(public_key))
                verify_signed_json(signed, entity, verify_key)
            except SignatureVerifyException:
                continue
            except Exception:
                continue
            return True
    return False
