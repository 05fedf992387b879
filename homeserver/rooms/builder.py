"""Building a local event: step 1 of the event pipeline.

Given what a local user wants to send and the room state it will follow, fill in
``prev_events`` (the forward extremities), ``auth_events`` (selected by the spec's
rules from that state), ``depth``, ``origin_server_ts``, the content hash and our
signature, and compute the event ID from the same canonical encoding.  No I/O: the
caller supplies the extremities, their depths and the state.

spec: server-server-api.md#pdus, #auth-events-selection, #signing-events
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from homeserver.events.auth import auth_types_for_event
from homeserver.events.event import Event, InternalMetadata, StateKey
from homeserver.events.room_versions import EventFormat, RoomVersion
from homeserver.events.signing import SigningKey, sign_event_and_compute_id
from homeserver.events.validation import validate_pdu

#: The spec allows at most 20 prev_events (validation enforces it).
MAX_PREV_EVENTS = 20
#: Depth is capped at 2**63 - 1 (spec: server-server-api.md#pdus).
MAX_DEPTH = 2**63 - 1


@attrs.frozen
class EventDraft:
    """What the sender decided; everything else is derived."""

    room_id: str
    event_type: str
    sender: str
    content: dict[str, Any]
    state_key: str | None = None
    #: ``redacts`` of an m.room.redaction (top level before v11, content from v11).
    redacts: str | None = None


@attrs.frozen
class RoomPosition:
    """Where the new event goes: the extremities it follows and the state before it."""

    prev_event_ids: Sequence[str]
    max_prev_depth: int
    state_before: Mapping[StateKey, str]


def build_local_event(
    room_version: RoomVersion,
    draft: EventDraft,
    position: RoomPosition,
    *,
    server_name: str,
    signing_key: SigningKey,
    origin_server_ts: int,
    internal: InternalMetadata | None = None,
) -> Event:
    """A signed, hashed, validated event ready for the auth checks.

    Raises :class:`~homeserver.events.errors.InvalidEventError` if the result would
    not be a valid PDU (too large, bad identifiers): the caller turns that into a
    client error.
    """
    if room_version.event_format is EventFormat.V1:
        # Rooms v1/v2 carry server-generated IDs and hash pairs in references; we
        # still read such rooms but never create events in them.
        raise ValueError(f"cannot create events in room version {room_version.identifier}")
    auth_keys = auth_types_for_event(
        room_version, draft.event_type, draft.sender, draft.state_key, draft.content
    )
    auth_event_ids = sorted(
        {position.state_before[key] for key in auth_keys if key in position.state_before}
    )
    pdu: dict[str, Any] = {
        "type": draft.event_type,
        "sender": draft.sender,
        "content": draft.content,
        "prev_events": list(position.prev_event_ids)[-MAX_PREV_EVENTS:],
        "auth_events": auth_event_ids,
        "depth": min(position.max_prev_depth + 1, MAX_DEPTH),
        "origin_server_ts": origin_server_ts,
    }
    is_v12_create = room_version.hydra and draft.event_type == "m.room.create"
    if not is_v12_create:
        # v12 create events have no room ID: the room ID is derived from them.
        pdu["room_id"] = draft.room_id
    if draft.state_key is not None:
        pdu["state_key"] = draft.state_key
    if draft.redacts is not None and not room_version.redacts_in_content:
        pdu["redacts"] = draft.redacts
    # One canonical encoding gives both the signature and the event ID.
    event_id = sign_event_and_compute_id(pdu, server_name, signing_key, room_version)
    validate_pdu(pdu, room_version)
    return Event(pdu, room_version, event_id, internal)
