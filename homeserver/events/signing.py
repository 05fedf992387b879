"""Signing outgoing events and checking the signatures on received ones.

Keys come from ``signedjson``/``pynacl``; the signed bytes are the canonical JSON of
the redacted event without ``signatures``/``unsigned`` (appendices.md#signing-details),
which are also the bytes of the reference hash, so one encoding serves both.

spec: server-server-api.md#signing-events,
server-server-api.md#validating-hashes-and-signatures-on-received-events,
rooms/fragments/v5-signing-requirements.md
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Protocol

import attrs
import nacl.exceptions
import nacl.signing
from unpaddedbase64 import decode_base64, encode_base64

from homeserver.events.auth.membership import AUTHORISING_USER
from homeserver.events.errors import InvalidEventError
from homeserver.events.hashing import (
    add_content_hash,
    compute_event_id,
    event_id_from_reference_hash,
    reference_hash_bytes,
)
from homeserver.events.room_versions import EventFormat, RoomVersion
from homeserver.identifiers import UserID, user_id_problem

#: The only signing algorithm the spec defines.  spec: appendices.md#signing-details
ED25519 = "ed25519"


class SigningKey(Protocol):
    """A ``signedjson`` signing key: a ``nacl.signing.SigningKey`` with ``alg``/``version``."""

    alg: str
    version: str

    def sign(self, message: bytes, /) -> nacl.signing.SignedMessage: ...


class VerifyKey(Protocol):
    """A ``nacl.signing.VerifyKey`` (or ``signedjson``'s typed view of one)."""

    def verify(self, message: bytes, signature: bytes, /) -> bytes: ...


@attrs.frozen
class VerifyKeyWithExpiry:
    """A server's public key and until when it may be used.

    ``valid_until_ts`` should already be capped at "now + 7 days" by whoever fetched
    it (rooms/fragments/v5-signing-requirements.md); None means no known expiry.
    """

    verify_key: VerifyKey
    valid_until_ts: int | None = None


def sign_event(
    pdu: dict[str, Any], server_name: str, signing_key: SigningKey, room_version: RoomVersion
) -> None:
    """Add the content hash, then ``server_name``'s signature over the redacted event.

    ``room_version`` is needed because the redaction rules decide what is signed.

    spec: server-server-api.md#adding-hashes-and-signatures-to-outgoing-events
    """
    add_content_hash(pdu)
    _sign_bytes(pdu, server_name, signing_key, reference_hash_bytes(pdu, room_version))


def sign_event_and_compute_id(
    pdu: dict[str, Any], server_name: str, signing_key: SigningKey, room_version: RoomVersion
) -> str:
    """:func:`sign_event`, returning the event ID computed from the same encoding.

    spec: server-server-api.md#signing-events, rooms/fragments/v4-event-ids.md
    """
    add_content_hash(pdu)
    message = reference_hash_bytes(pdu, room_version)
    _sign_bytes(pdu, server_name, signing_key, message)
    if room_version.event_format is EventFormat.V1:
        return compute_event_id(pdu, room_version)
    return event_id_from_reference_hash(hashlib.sha256(message).digest(), room_version)


def _sign_bytes(
    pdu: dict[str, Any], server_name: str, signing_key: SigningKey, message: bytes
) -> None:
    signature = encode_base64(signing_key.sign(message).signature)
    key_id = f"{signing_key.alg}:{signing_key.version}"
    # Copy rather than mutate: ``signatures`` may be shared with another copy of the PDU.
    existing = pdu.get("signatures")
    signatures = dict(existing) if isinstance(existing, dict) else {}
    server_signatures = signatures.get(server_name)
    server_signatures = dict(server_signatures) if isinstance(server_signatures, dict) else {}
    server_signatures[key_id] = signature
    signatures[server_name] = server_signatures
    pdu["signatures"] = signatures


def required_signature_servers(pdu: dict[str, Any], room_version: RoomVersion) -> set[str]:
    """The servers whose signatures an event must carry.

    * the sender's server, always;
    * v1/v2: also the server named in ``event_id``;
    * v8+ member events with ``content.join_authorised_via_users_server``: that user's
      server (restricted joins are signed by the resident server that authorised
      them).  Auth rule 4.2 applies to any membership carrying the key and only checks
      that the signature is present, relying on it being verified here.

    Raises :class:`InvalidEventError` if ``sender`` (or a v1/v2 ``event_id``) is malformed.

    spec: server-server-api.md#validating-hashes-and-signatures-on-received-events,
    rooms/v8.md (auth rule 4.2)
    """
    sender = pdu.get("sender")
    # No length check: rooms v1-v10 accept senders measured in code points (validation).
    problem = user_id_problem(sender, historical=True, check_length=False)
    if problem is not None:
        raise InvalidEventError(f"invalid sender: {problem}")
    servers = {sender.partition(":")[2]}  # type: ignore[union-attr]
    if room_version.event_format is EventFormat.V1:
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str) or ":" not in event_id:
            raise InvalidEventError("room versions 1 and 2 require an event_id with a server name")
        servers.add(event_id.partition(":")[2])
    if room_version.restricted_join_rule and pdu.get("type") == "m.room.member":
        content = pdu.get("content")
        authoriser = content.get(AUTHORISING_USER) if isinstance(content, dict) else None
        if isinstance(authoriser, str):
            try:
                servers.add(UserID.parse(authoriser).domain)
            except ValueError:
                # Not a user ID: no server can have authorised it and the auth rules
                # reject the event; there is no extra signature to require.
                pass
    return servers


def verify_event_signatures(
    pdu: dict[str, Any],
    room_version: RoomVersion,
    keys: Mapping[str, Mapping[str, VerifyKeyWithExpiry]],
) -> None:
    """Check that every required server validly signed the redacted event.

    ``keys`` maps server name -> key ID (``ed25519:...``) -> key.  Signatures with
    unknown algorithms or unknown keys are skipped; from room version 5, so are keys
    whose ``valid_until_ts`` is before the event's ``origin_server_ts``.  Every
    remaining signature must verify and each required server needs at least one.
    Raises :class:`InvalidEventError` otherwise.

    spec: server-server-api.md#validating-hashes-and-signatures-on-received-events,
    appendices.md#checking-for-a-signature, rooms/fragments/v5-signing-requirements.md
    """
    servers = required_signature_servers(pdu, room_version)
    signatures = pdu.get("signatures")
    if not isinstance(signatures, dict):
        raise InvalidEventError("event has no 'signatures' object")
    origin_server_ts = pdu.get("origin_server_ts")
    if room_version.enforce_key_validity and type(origin_server_ts) is not int:
        raise InvalidEventError("origin_server_ts must be an integer to check key validity")
    message: bytes | None = None
    for server in sorted(servers):
        server_signatures = signatures.get(server)
        if not isinstance(server_signatures, dict):
            raise InvalidEventError(f"event is not signed by {server}")
        server_keys = keys.get(server, {})
        verified = 0
        for key_id, signature in server_signatures.items():
            if not isinstance(key_id, str) or not key_id.startswith(ED25519 + ":"):
                continue
            key = server_keys.get(key_id)
            if key is None:
                continue
            if (
                room_version.enforce_key_validity
                and key.valid_until_ts is not None
                and key.valid_until_ts < origin_server_ts  # type: ignore[operator]
            ):
                continue
            if message is None:
                message = reference_hash_bytes(pdu, room_version)
            _verify_one(message, server, key_id, signature, key.verify_key)
            verified += 1
        if not verified:
            raise InvalidEventError(f"event has no signature from {server} with a known, valid key")


def _verify_one(
    message: bytes, server: str, key_id: str, signature: object, verify_key: VerifyKey
) -> None:
    if not isinstance(signature, str):
        raise InvalidEventError(f"signature {server}/{key_id} is not a string")
    try:
        signature_bytes = decode_base64(signature)
    except ValueError as exc:
        raise InvalidEventError(f"signature {server}/{key_id} is not valid base64") from exc
    try:
        verify_key.verify(message, signature_bytes)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise InvalidEventError(f"signature {server}/{key_id} does not verify") from exc
