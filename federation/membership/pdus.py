"""What both sides of the membership handshakes share: the shape a member event
must have, our countersignature, the room state an invite or knock carries, and
PDUs as federation sends them.

spec: server-server-api.md#joining-rooms, #inviting-to-a-room, #knocking-rooms,
#adding-hashes-and-signatures-to-outgoing-events
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from unpaddedbase64 import encode_base64

from federation.inbound.pdu_checks import InvalidPdu
from federation.protocols import server_of
from homeserver import errors
from homeserver.events.event import Event
from homeserver.events.hashing import reference_hash_bytes
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import SigningKey

logger = logging.getLogger(__name__)

#: Error codes of these endpoints that ``homeserver.errors.Codes`` does not list.
#: spec: server-server-api.md#restricted-rooms, data/api/server-server/joins-v1.yaml
INCOMPATIBLE_ROOM_VERSION = "M_INCOMPATIBLE_ROOM_VERSION"
UNABLE_TO_AUTHORISE_JOIN = "M_UNABLE_TO_AUTHORISE_JOIN"
UNABLE_TO_GRANT_JOIN = "M_UNABLE_TO_GRANT_JOIN"

#: At most this many entries of ``invite_room_state``/``knock_room_state`` are read
#: (the spec recommends seven keys; a little slack for what servers add).
MAX_ROOM_STATE_ENTRIES = 50


class PduCheck(Protocol):
    """Steps 1-3 of the checks on receipt (``federation.inbound.pdu_checks.PduChecker``):
    raises ``InvalidPdu`` for a malformed or badly signed PDU."""

    async def check(
        self, room_version: RoomVersion, pdu: Mapping[str, Any], *, origin: str | None
    ) -> Event: ...


def member_event_problem(
    pdu: Mapping[str, Any], *, room_id: str, membership: str, sender_server: str | None
) -> str | None:
    """Why ``pdu`` is not a ``membership`` event of a user about themselves in
    ``room_id`` (sent by a user of ``sender_server`` when given), or None.

    Checked before anything is signed or stored: servers must not countersign or
    accept other events through these endpoints.
    spec: data/api/server-server/joins-v2.yaml, leaving-v2.yaml, knocks.yaml
    """
    if pdu.get("type") != "m.room.member":
        return "the event is not an m.room.member event"
    if pdu.get("room_id") != room_id:
        return "the event is not in this room"
    content = pdu.get("content")
    if not isinstance(content, dict) or content.get("membership") != membership:
        return f"the event's membership is not {membership}"
    sender = pdu.get("sender")
    if not isinstance(sender, str) or pdu.get("state_key") != sender:
        return "the event's state_key is not its sender"
    if sender_server is not None and server_of(sender) != sender_server:
        return f"the sender is not a user of {sender_server}"
    return None


def countersign(
    pdu: Mapping[str, Any], server_name: str, signing_key: SigningKey, room_version: RoomVersion
) -> dict[str, Any]:
    """A copy of ``pdu`` with ``server_name``'s signature added: over the redacted event,
    leaving its hashes and other signatures as they are (the event ID does not change).

    spec: server-server-api.md#signing-events, appendices.md#signing-json
    """
    signed = dict(pdu)
    signed.pop("unsigned", None)
    message = reference_hash_bytes(signed, room_version)
    signature = encode_base64(signing_key.sign(message).signature)
    existing = pdu.get("signatures")
    signatures = {
        server: dict(keys)
        for server, keys in (existing.items() if isinstance(existing, dict) else ())
        if isinstance(keys, dict)
    }
    signatures.setdefault(server_name, {})[f"{signing_key.alg}:{signing_key.version}"] = signature
    signed["signatures"] = signatures
    return signed


def federation_pdu(event: Event) -> dict[str, Any]:
    """``event`` as federation sends it: the PDU without what this server keeps in
    ``unsigned`` (stripped state, serving details)."""
    return {key: value for key, value in event.pdu.items() if key != "unsigned"}


async def checked_room_state(
    pdus: PduCheck,
    room_version: RoomVersion,
    room_id: str,
    entries: object,
    *,
    origin: str,
    strict: bool,
) -> list[dict[str, Any]]:
    """The usable entries of an ``invite_room_state``/``knock_room_state``, as stripped
    state events (``type``, ``state_key``, ``content``, ``sender``) for clients.

    Since v1.16 entries are full PDUs of the room, which must include its create
    event; each is checked (format, signatures) and one of another room is dropped.
    Older servers send stripped events, accepted as they are unless ``strict``.
    With ``strict`` (room versions after 11, where the spec says to refuse) a bad
    entry or a missing create event is a 400 ``M_INVALID_PARAM``; otherwise bad
    entries are dropped.

    spec: server-server-api.md#inviting-to-a-room (the note on ``invite_room_state``),
    data/api/server-server/invites-v2.yaml, knocks.yaml,
    client-server-api/_index.md#stripped-state
    """
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        if strict:
            raise errors.invalid_param("invite_room_state must be a list of PDUs")
        return []
    stripped: list[dict[str, Any]] = []
    has_create = False
    for entry in entries[:MAX_ROOM_STATE_ENTRIES]:
        problem: str | None
        if not isinstance(entry, dict):
            problem = "an entry is not an object"
        elif "signatures" in entry or "hashes" in entry:
            problem = await _pdu_problem(pdus, room_version, room_id, entry, origin)
        elif strict:
            problem = "an entry is not a PDU"
        else:
            problem = _stripped_problem(entry)
        if problem is not None:
            if strict:
                raise errors.invalid_param(f"invite_room_state: {problem}")
            logger.info("room state entry from %s dropped: %s", origin, problem)
            continue
        assert isinstance(entry, dict)
        has_create = has_create or entry.get("type") == "m.room.create"
        stripped.append(
            {
                "type": entry["type"],
                "state_key": entry["state_key"],
                "content": entry.get("content", {}),
                "sender": entry["sender"],
            }
        )
    if strict and not has_create:
        raise errors.invalid_param("invite_room_state lacks the room's m.room.create event")
    return stripped


async def _pdu_problem(
    pdus: PduCheck,
    room_version: RoomVersion,
    room_id: str,
    entry: dict[str, Any],
    origin: str,
) -> str | None:
    try:
        event = await pdus.check(room_version, entry, origin=origin)
    except InvalidPdu as invalid:
        return f"an entry is not a valid PDU: {invalid.reason}"
    if event.room_id != room_id:
        return "an entry is of another room"
    if not event.is_state():
        return "an entry is not a state event"
    return None


def _stripped_problem(entry: dict[str, Any]) -> str | None:
    if not all(isinstance(entry.get(key), str) for key in ("type", "state_key", "sender")):
        return "an entry lacks type, state_key or sender"
    if not isinstance(entry.get("content", {}), dict):
        return "an entry's content is not an object"
    return None


def pdus_of(events: Sequence[Event]) -> list[dict[str, Any]]:
    return [federation_pdu(event) for event in events]
