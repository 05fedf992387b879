"""Is a PDU well-formed for its room version?  (Step 1 of the checks on receipt.)

Only the *format* is checked here: sizes, required keys and their JSON types,
identifier grammar and canonical JSON.  Signatures, hashes and the auth rules come
later.  Every problem raises :class:`InvalidEventError`; nothing else escapes.

spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu,
client-server-api/_index.md#size-limits, rooms/*.md "Event format"
(data/api/server-server/definitions/pdu_v*.yaml), rooms/fragments/v6-canonical-json.md
"""

from __future__ import annotations

from typing import Any

from homeserver.events.canonical import check_json_value, encode_canonical_json
from homeserver.events.errors import EventTooLargeError, InvalidEventError
from homeserver.events.room_versions import EventFormat, RoomVersion
from homeserver.identifiers import (
    is_valid_domain_room_id,
    is_valid_event_id,
    is_valid_hash_room_id,
    user_id_problem,
)

#: spec: client-server-api/_index.md#size-limits
MAX_PDU_BYTES = 65536
MAX_KEY_SIZE = 255
#: spec: pdu_v1.yaml / auth_events_prev_events_v4.yaml ("less than or equal to")
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10
#: spec: pdu_v1.yaml "depth": must be less than the maximum 64-bit integer.
MAX_DEPTH = 2**63 - 1

#: The spec measures the per-key limits in bytes.  Events in rooms v1-v10 were
#: historically accepted by the network with the limits counted in code points, so
#: measuring bytes there would reject events other servers hold as valid and split
#: the room; from v11 the limits are enforced in bytes as written.
_CODEPOINT_LIMIT_VERSIONS = frozenset(str(n) for n in range(1, 11))


def validate_pdu(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """Raise :class:`InvalidEventError` unless ``pdu`` is a well-formed PDU of ``room_version``;
    returns its canonical JSON (encoded for the size check, kept by the event).

    spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu
    """
    if not isinstance(pdu, dict):
        raise InvalidEventError("a PDU must be a JSON object")
    check_json_value(pdu, strict=room_version.strict_canonicaljson)
    encoded = encode_canonical_json(pdu)
    size = len(encoded)
    if size > MAX_PDU_BYTES:
        raise EventTooLargeError(
            f"event is {size} bytes of canonical JSON; the limit is {MAX_PDU_BYTES}"
        )

    byte_limits = room_version.identifier not in _CODEPOINT_LIMIT_VERSIONS
    _check_type_and_state_key(pdu, byte_limits)
    _check_sender(pdu, byte_limits)
    _check_room_id(pdu, room_version, byte_limits)
    _check_integers(pdu)
    _check_objects(pdu)
    _check_references(pdu, "prev_events", MAX_PREV_EVENTS, room_version, byte_limits)
    _check_references(pdu, "auth_events", MAX_AUTH_EVENTS, room_version, byte_limits)
    if room_version.event_format is EventFormat.V1:
        event_id = _require(pdu, "event_id", str, "a string")
        if not is_valid_event_id(event_id, room_version, check_length=False):
            raise InvalidEventError(f"event_id {event_id!r} is not a valid event ID")
        _check_size("event_id", event_id, byte_limits)
    if not room_version.redacts_in_content and "redacts" in pdu:
        if not isinstance(pdu["redacts"], str):
            raise InvalidEventError("'redacts' must be a string")
    return encoded


def _require(pdu: dict[str, Any], key: str, kind: type, description: str) -> Any:
    if key not in pdu:
        raise InvalidEventError(f"missing required key '{key}'")
    value = pdu[key]
    # bool is an int subclass, but ``true`` is not a JSON integer.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidEventError(f"'{key}' must be {description}, got {type(value).__name__}")
    return value


def _size(value: str, byte_limits: bool) -> int:
    # check_json_value + encoding already rejected lone surrogates, so encode() is safe.
    return len(value.encode("utf-8")) if byte_limits else len(value)


def _check_size(key: str, value: str, byte_limits: bool) -> None:
    size = _size(value, byte_limits)
    if size > MAX_KEY_SIZE:
        unit = "bytes" if byte_limits else "characters"
        raise InvalidEventError(f"'{key}' is {size} {unit} long; the limit is {MAX_KEY_SIZE}")


def _check_type_and_state_key(pdu: dict[str, Any], byte_limits: bool) -> None:
    _check_size("type", _require(pdu, "type", str, "a string"), byte_limits)
    if "state_key" in pdu:
        _check_size("state_key", _require(pdu, "state_key", str, "a string"), byte_limits)


def _check_sender(pdu: dict[str, Any], byte_limits: bool) -> None:
    sender = _require(pdu, "sender", str, "a string")
    # Accept the historical grammar: old rooms contain such senders.
    problem = user_id_problem(sender, historical=True, check_length=False)
    if problem is not None:
        raise InvalidEventError(f"invalid sender: {problem}")
    _check_size("sender", sender, byte_limits)


def _check_room_id(pdu: dict[str, Any], room_version: RoomVersion, byte_limits: bool) -> None:
    """spec: room_id_before_v12.yaml, room_id_v12.yaml, rooms/v12.md (auth rule 1.2)"""
    if room_version.hydra:
        if pdu.get("type") == "m.room.create":
            # The create event's ID *is* the room ID; it must not name one itself.
            if "room_id" in pdu:
                raise InvalidEventError(
                    f"m.room.create events in room version {room_version.identifier} "
                    "must not have a room_id"
                )
            return
        room_id = _require(pdu, "room_id", str, "a string")
        if not is_valid_hash_room_id(room_id):
            raise InvalidEventError(
                f"room_id {room_id!r} is not a room version {room_version.identifier} room ID "
                "('!' followed by the create event's URL-safe base64 reference hash)"
            )
        return
    room_id = _require(pdu, "room_id", str, "a string")
    if not is_valid_domain_room_id(room_id, check_length=False):
        raise InvalidEventError(f"room_id {room_id!r} is not a valid '!opaque_id:domain' room ID")
    _check_size("room_id", room_id, byte_limits)


def _check_integers(pdu: dict[str, Any]) -> None:
    depth = _require(pdu, "depth", int, "an integer")
    if not 0 <= depth <= MAX_DEPTH:
        raise InvalidEventError(f"depth {depth} is outside 0..{MAX_DEPTH}")
    _require(pdu, "origin_server_ts", int, "an integer")


def _check_objects(pdu: dict[str, Any]) -> None:
    _require(pdu, "content", dict, "an object")
    hashes = _require(pdu, "hashes", dict, "an object")
    if not isinstance(hashes.get("sha256"), str):
        raise InvalidEventError("'hashes' must contain a string 'sha256'")
    signatures = _require(pdu, "signatures", dict, "an object")
    for server, server_signatures in signatures.items():
        if not isinstance(server_signatures, dict):
            raise InvalidEventError(f"signatures of {server!r} must be an object")
        for key_id, signature in server_signatures.items():
            if not isinstance(signature, str):
                raise InvalidEventError(f"signature {server}/{key_id} must be a string")
    if "unsigned" in pdu and not isinstance(pdu["unsigned"], dict):
        raise InvalidEventError("'unsigned' must be an object")


def _check_references(
    pdu: dict[str, Any], key: str, limit: int, room_version: RoomVersion, byte_limits: bool
) -> None:
    """spec: pdu_v1.yaml (``[event_id, {hashes}]`` pairs), auth_events_prev_events_v4.yaml"""
    references = _require(pdu, key, list, "an array")
    if len(references) > limit:
        raise InvalidEventError(f"'{key}' has {len(references)} entries; the limit is {limit}")
    pairs = room_version.event_format is EventFormat.V1
    for reference in references:
        if pairs:
            if not (isinstance(reference, list) and len(reference) == 2):
                raise InvalidEventError(f"entries of '{key}' must be [event_id, hashes] pairs")
            event_id, hashes = reference
            if not isinstance(hashes, dict):
                raise InvalidEventError(f"reference hashes in '{key}' must be objects")
        else:
            event_id = reference
        if not isinstance(event_id, str) or not is_valid_event_id(
            event_id, room_version, check_length=False
        ):
            raise InvalidEventError(
                f"'{key}' contains {event_id!r}, not a room version "
                f"{room_version.identifier} event ID"
            )
        _check_size(key, event_id, byte_limits)
