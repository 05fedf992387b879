"""Content hashes, reference hashes and the event IDs derived from them.

spec: server-server-api.md#calculating-the-content-hash-for-an-event,
server-server-api.md#calculating-the-reference-hash-for-an-event,
rooms/fragments/v1-event-ids.md, rooms/v3.md, rooms/fragments/v4-event-ids.md
"""

from __future__ import annotations

import hashlib
from typing import Any

from unpaddedbase64 import decode_base64, encode_base64

from homeserver.events.canonical import encode_canonical_json
from homeserver.events.errors import InvalidEventError
from homeserver.events.redaction import redacted_for_signing
from homeserver.events.room_versions import EventFormat, RoomVersion

#: Keys that may change after the content hash is computed, so it excludes them.
_NOT_CONTENT_HASHED = frozenset({"unsigned", "signatures", "hashes"})


def content_hash_bytes(pdu: dict[str, Any]) -> bytes:
    """The canonical JSON the content hash covers: the PDU minus unsigned/signatures/hashes.

    spec: server-server-api.md#calculating-the-content-hash-for-an-event
    """
    return encode_canonical_json(
        {key: value for key, value in pdu.items() if key not in _NOT_CONTENT_HASHED}
    )


def compute_content_hash(pdu: dict[str, Any]) -> bytes:
    """SHA-256 over the whole unredacted event.

    spec: server-server-api.md#calculating-the-content-hash-for-an-event
    """
    return hashlib.sha256(content_hash_bytes(pdu)).digest()


def add_content_hash(pdu: dict[str, Any]) -> None:
    """Set ``pdu["hashes"]["sha256"]`` (other hash algorithms are kept).

    ``hashes`` is replaced by a new dict rather than mutated, so a dict shared with
    another PDU copy is never changed behind its back.

    spec: server-server-api.md#adding-hashes-and-signatures-to-outgoing-events
    """
    existing = pdu.get("hashes")
    hashes = dict(existing) if isinstance(existing, dict) else {}
    hashes["sha256"] = encode_base64(compute_content_hash(pdu))
    pdu["hashes"] = hashes


def check_content_hash(pdu: dict[str, Any]) -> bool:
    """Whether ``hashes.sha256`` matches the event; False if missing or not base64.

    A mismatch means the event must be handled in its redacted form.  A PDU that is
    not JSON at all raises :class:`InvalidEventError` (``validate_pdu`` rejects those).

    spec: server-server-api.md#validating-hashes-and-signatures-on-received-events
    """
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict):
        return False
    expected = hashes.get("sha256")
    if not isinstance(expected, str):
        return False
    try:
        # unpaddedbase64 accepts both padded and unpadded input, as the spec asks.
        expected_bytes = decode_base64(expected)
    except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
        return False
    return expected_bytes == compute_content_hash(pdu)


def reference_hash_bytes(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """Canonical JSON of the redacted event without signatures and unsigned.

    These are also exactly the bytes an event signature covers, so signing and
    event-ID computation can share one encoding.

    spec: server-server-api.md#calculating-the-reference-hash-for-an-event
    """
    return encode_canonical_json(redacted_for_signing(pdu, room_version))


def compute_reference_hash(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """SHA-256 of the redacted event without signatures and unsigned.

    spec: server-server-api.md#calculating-the-reference-hash-for-an-event
    """
    return hashlib.sha256(reference_hash_bytes(pdu, room_version)).digest()


def reference_hashes(pdu: dict[str, Any], room_version: RoomVersion) -> dict[str, str]:
    """``{"sha256": <unpadded base64 reference hash>}``: what a room version 1/2 event
    carries next to each event ID in its ``prev_events`` and ``auth_events``.

    spec: data/api/server-server/definitions/pdu_v1.yaml ("Event IDs and reference
    hashes"), server-server-api.md#calculating-the-reference-hash-for-an-event
    """
    return {"sha256": encode_base64(compute_reference_hash(pdu, room_version))}


def event_id_from_reference_hash(reference_hash: bytes, room_version: RoomVersion) -> str:
    """``$`` + the hash in standard (v3) or URL-safe (v4+) unpadded base64.

    spec: rooms/v3.md, rooms/fragments/v4-event-ids.md
    """
    if room_version.event_format is EventFormat.V1:
        raise ValueError("room versions 1 and 2 do not derive event IDs from hashes")
    urlsafe = room_version.event_format is not EventFormat.V2
    return "$" + encode_base64(reference_hash, urlsafe=urlsafe)


def compute_event_id(pdu: dict[str, Any], room_version: RoomVersion) -> str:
    """The event's ID: the ``event_id`` field in v1/v2, the reference hash from v3.

    Raises :class:`InvalidEventError` if a v1/v2 PDU has no string ``event_id`` or the
    PDU cannot be encoded.

    spec: rooms/fragments/v1-event-ids.md, rooms/v3.md, rooms/fragments/v4-event-ids.md
    """
    if room_version.event_format is EventFormat.V1:
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str):
            raise InvalidEventError("room versions 1 and 2 require a string 'event_id'")
        return event_id
    return event_id_from_reference_hash(compute_reference_hash(pdu, room_version), room_version)
