"""Building a local event: step 1 of the event pipeline.

Given what a local user wants to send and the room state it will follow, fill in
``prev_events`` (the forward extremities), ``auth_events`` (selected by the spec's
rules from that state), ``depth``, ``origin_server_ts``, the content hash and our
signature, and compute the event ID from the same canonical encoding.  No I/O: the
caller supplies the extremities, their depths and the state.

Rooms v1/v2 (event format V1) differ: the event ID is ours to choose,
``$<random>:<our server name>``, and travels inside the event as ``event_id`` (so it
is hashed and signed with it); each reference is an ``[event_id, {"sha256":
<reference hash>}]`` pair, so the caller also supplies the reference hashes of the
events it points at; and the event names its ``origin`` server.

spec: server-server-api.md#pdus, #auth-events-selection, #signing-events,
rooms/v1.md#event-format, rooms/fragments/v1-event-ids.md
"""

from __future__ import annotations

import secrets
import string
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
#: Length of the random part of a v1/v2 event ID (letters and digits: ~143 bits).
V1_EVENT_ID_RANDOM_LENGTH = 24
_V1_EVENT_ID_ALPHABET = string.ascii_letters + string.digits


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
    #: Event ID -> ``{"sha256": ...}`` reference hashes of the prev events and of the
    #: state events that may become auth events.  Only the v1/v2 event format needs
    #: them (spec: pdu_v1.yaml); see :func:`homeserver.events.hashing.reference_hashes`.
    reference_hashes: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)


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
    client error.  Raises ``ValueError`` if a v1/v2 event would point at an event
    whose reference hash ``position`` does not give (a bug in the caller).
    """
    auth_keys = auth_types_for_event(
        room_version, draft.event_type, draft.sender, draft.state_key, draft.content
    )
    auth_event_ids = sorted(
        {position.state_before[key] for key in auth_keys if key in position.state_before}
    )
    prev_event_ids = list(position.prev_event_ids)[-MAX_PREV_EVENTS:]
    pdu: dict[str, Any] = {
        "type": draft.event_type,
        "sender": draft.sender,
        "content": draft.content,
        "prev_events": _references(prev_event_ids, room_version, position),
        "auth_events": _references(auth_event_ids, room_version, position),
        "depth": min(position.max_prev_depth + 1, MAX_DEPTH),
        "origin_server_ts": origin_server_ts,
    }
    if room_version.event_format is EventFormat.V1:
        # spec: rooms/fragments/v1-event-ids.md -- chosen by us, carried in the event.
        pdu["event_id"] = new_v1_event_id(server_name)
        # Kept by the v1 redaction algorithm, so covered by the signature.
        pdu["origin"] = server_name
    is_v12_create = room_version.hydra and draft.event_type == "m.room.create"
    if not is_v12_create:
        # v12 create events have no room ID: the room ID is derived from them.
        pdu["room_id"] = draft.room_id
    if draft.state_key is not None:
        pdu["state_key"] = draft.state_key
    if draft.redacts is not None and not room_version.redacts_in_content:
        pdu["redacts"] = draft.redacts
    # One canonical encoding gives both the signature and (v3+) the event ID.
    event_id = sign_event_and_compute_id(pdu, server_name, signing_key, room_version)
    canonical_json = validate_pdu(pdu, room_version)
    return Event(pdu, room_version, event_id, internal, canonical_json=canonical_json)


def new_v1_event_id(server_name: str) -> str:
    """A fresh ``$opaque_id:server_name`` event ID for a room version 1/2 event.

    spec: rooms/fragments/v1-event-ids.md (``opaque_id`` is a locally-unique string)
    """
    opaque = "".join(
        secrets.choice(_V1_EVENT_ID_ALPHABET) for _ in range(V1_EVENT_ID_RANDOM_LENGTH)
    )
    return f"${opaque}:{server_name}"


def _references(
    event_ids: Sequence[str], room_version: RoomVersion, position: RoomPosition
) -> list[Any]:
    """``prev_events``/``auth_events`` in the room version's format: plain IDs from v3,
    ``[event_id, {"sha256": reference hash}]`` pairs in v1/v2.

    spec: data/api/server-server/definitions/pdu_v1.yaml, pdu_v3.yaml
    """
    if room_version.event_format is not EventFormat.V1:
        return list(event_ids)
    references: list[Any] = []
    for event_id in event_ids:
        hashes = position.reference_hashes.get(event_id)
        if hashes is None:
            raise ValueError(f"no reference hash given for {event_id}")
        references.append([event_id, dict(hashes)])
    return references
