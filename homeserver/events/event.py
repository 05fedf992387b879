"""The in-memory event: a PDU plus the room version that gives it meaning.

An :class:`Event` wraps the PDU dict exactly as it travels over federation (with
``hashes``, ``signatures`` and ``unsigned``); it never re-serialises or normalises
it, so hashes and signatures stay verifiable.  The event ID is passed in by whoever
builds the object (see ``homeserver.events.format.event_from_pdu``), because in
room versions 3+ it is derived from the content hash and so is computed once there.

spec: server-server-api.md#pdus, rooms/*.md "Event format"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from homeserver.events.canonical import encode_canonical_json
from homeserver.events.room_versions import EventFormat, RoomVersion

#: A piece of room state is identified by ``(event type, state key)``.
StateKey = tuple[str, str]
T = TypeVar("T")
#: ``{(type, state_key): value}``: a room state, usually of event IDs or events.
StateMap = Mapping[StateKey, T]


class FrozenEventError(AttributeError):
    """Something tried to change an event that is already stored (and shared)."""


def _refuse_once_stored(instance: InternalMetadata, attribute: Any, value: Any) -> Any:
    if instance.stored:
        raise FrozenEventError(f"event metadata is read-only once stored ({attribute.name})")
    return value


@attrs.define(slots=True, on_setattr=_refuse_once_stored)
class InternalMetadata:
    """What this server knows about an event that is not part of the PDU.

    The event path fills it in while deciding an event; once the event is stored it
    is shared through the event cache, and :meth:`mark_stored` makes it read-only.
    """

    #: Why the event was rejected by the auth rules, or None if accepted.
    rejected_reason: str | None = None
    #: Passed the auth rules against its own auth events, but not the current state
    #: (spec: server-server-api.md#soft-failure).  Kept in the DAG, never shown to clients.
    soft_failed: bool = False
    #: Stored without its state or its place in the DAG (e.g. fetched auth events).
    outlier: bool = False
    #: Sent by a local user from this device/transaction, for idempotent /send.
    txn_id: str | None = None
    device_id: str | None = None
    #: Position in the events stream once persisted (None for outliers).
    stream_ordering: int | None = None
    #: For a state event, the event it replaced in the room state.
    replaces_state: str | None = None
    #: The stored state group of the room state just before this event.
    state_group_before: int | None = None
    #: Stored, and from now on read-only.
    stored: bool = attrs.field(default=False, kw_only=True, on_setattr=attrs.setters.NO_OP)

    def mark_stored(self) -> None:
        object.__setattr__(self, "stored", True)


class Event:
    """One room event (PDU).  Treat ``pdu`` as immutable once built."""

    __slots__ = ("_canonical_json", "event_id", "internal", "pdu", "room_version")

    def __init__(
        self,
        pdu: dict[str, Any],
        room_version: RoomVersion,
        event_id: str,
        internal: InternalMetadata | None = None,
        *,
        canonical_json: bytes | None = None,
    ) -> None:
        self.pdu = pdu
        self.room_version = room_version
        self.event_id = event_id
        self.internal = internal if internal is not None else InternalMetadata()
        self._canonical_json = canonical_json

    @property
    def canonical_json(self) -> bytes:
        """The PDU in canonical JSON, encoded once and reused: for the size check,
        storage, and what federation sends.  spec: appendices.md#canonical-json"""
        if self._canonical_json is None:
            self._canonical_json = encode_canonical_json(self.pdu)
        return self._canonical_json

    # --- top-level PDU fields -------------------------------------------------------

    @property
    def type(self) -> str:
        event_type: str = self.pdu["type"]
        return event_type

    @property
    def sender(self) -> str:
        sender: str = self.pdu["sender"]
        return sender

    @property
    def room_id(self) -> str:
        """The room ID; a v12 create event carries none and *is* the room's ID source.

        spec: rooms/v12.md (room IDs are ``!`` + the create event's reference hash)
        """
        room_id: str | None = self.pdu.get("room_id")
        if room_id is None and self.room_version.hydra and self.type == "m.room.create":
            return "!" + self.event_id[1:]
        return room_id if room_id is not None else ""

    @property
    def content(self) -> dict[str, Any]:
        content: dict[str, Any] = self.pdu.get("content", {})
        return content

    @property
    def state_key(self) -> str | None:
        return self.pdu.get("state_key")

    def is_state(self) -> bool:
        return "state_key" in self.pdu

    @property
    def state_key_tuple(self) -> StateKey:
        """``(type, state_key)``; only meaningful for state events."""
        return (self.type, self.pdu["state_key"])

    @property
    def depth(self) -> int:
        depth: int = self.pdu.get("depth", 0)
        return depth

    @property
    def origin_server_ts(self) -> int:
        origin_server_ts: int = self.pdu.get("origin_server_ts", 0)
        return origin_server_ts

    @property
    def prev_event_ids(self) -> list[str]:
        return _reference_ids(self.pdu.get("prev_events", []), self.room_version)

    @property
    def auth_event_ids(self) -> list[str]:
        return _reference_ids(self.pdu.get("auth_events", []), self.room_version)

    @property
    def redacts(self) -> str | None:
        """The event an ``m.room.redaction`` targets (top level before v11, content after)."""
        if self.type != "m.room.redaction":
            return None
        if self.room_version.redacts_in_content:
            redacts = self.content.get("redacts")
        else:
            redacts = self.pdu.get("redacts")
        return redacts if isinstance(redacts, str) else None

    @property
    def membership(self) -> str | None:
        """``content.membership`` of an m.room.member event, else None."""
        if self.type != "m.room.member":
            return None
        membership = self.content.get("membership")
        return membership if isinstance(membership, str) else None

    @property
    def unsigned(self) -> dict[str, Any]:
        unsigned: dict[str, Any] = self.pdu.get("unsigned", {})
        return unsigned

    @property
    def rejected(self) -> bool:
        return self.internal.rejected_reason is not None

    def __repr__(self) -> str:
        state = f" state_key={self.state_key!r}" if self.is_state() else ""
        return f"<Event {self.event_id} {self.type}{state} sender={self.sender}>"


def _reference_ids(references: Any, room_version: RoomVersion) -> list[str]:
    """``prev_events``/``auth_events`` as plain IDs, whatever the event format."""
    if not isinstance(references, list):
        return []
    if room_version.event_format is EventFormat.V1:
        # v1/v2 references are ``[event_id, {"sha256": ...}]`` pairs.
        return [
            ref[0]
            for ref in references
            if isinstance(ref, list) and ref and isinstance(ref[0], str)
        ]
    return [ref for ref in references if isinstance(ref, str)]


def state_map_of(events: Mapping[str, Event] | list[Event]) -> dict[StateKey, Event]:
    """Index state events by ``(type, state_key)``; later events win."""
    values = events.values() if isinstance(events, Mapping) else events
    return {event.state_key_tuple: event for event in values if event.is_state()}
