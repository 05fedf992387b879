"""Events as clients see them (the "client" event format).

A client event is the PDU's ``type``, ``content``, ``sender``, ``event_id``,
``origin_server_ts``, ``room_id`` and ``state_key``, plus ``unsigned``: ``age``,
``transaction_id`` (only for the device that sent it), ``prev_content`` /
``prev_sender`` / ``replaces_state`` for state, ``redacted_because`` for redacted
events (whose content is pruned by the room version's rules) and bundled
aggregations under ``m.relations``: the latest valid edit (``m.replace``), thread
summaries (``m.thread``) and references (``m.reference``).  Annotations are not
bundled (spec v1.7).  The original content of an edited event is left intact.

``unsigned.membership`` (spec v1.11) is the viewer's membership at each event,
counting the event's own change: read from the viewer's membership history in the
rooms concerned (one query per batch, never a state lookup per event) as the latest
of their membership events at or before the event's stream position; ``leave``
before any.  Outliers (no stream position) get none: the spec says to omit it when
it is not known.

The ``federation`` event format (a sync filter's ``event_format``) is the PDU as
stored (pruned if redacted) with its ``event_id`` and the same ``unsigned``.

spec: client-server-api/_index.md#room-event-format, #aggregations-of-child-events,
modules/event_replacements.md, modules/threading.md, modules/reference_relations.md
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.events.redaction import prune_event_dict
from homeserver.storage.events import EventStore, relation_of
from homeserver.storage.timeline import TimelineStore


@attrs.frozen
class Viewer:
    """Who the events are for: transaction IDs and thread participation depend on it."""

    user_id: str
    device_id: str | None = None
    ignored_users: frozenset[str] = frozenset()
    #: Room ID -> (stream position, membership) of the viewer's current membership
    #: event, when the caller has it at hand (``/sync``): events after it need no
    #: membership history.
    current_memberships: Mapping[str, tuple[int, str]] = attrs.field(
        factory=dict, eq=False, hash=False
    )


class EventSerializer:
    def __init__(self, clock: Clock, events: EventStore, timeline: TimelineStore) -> None:
        self._clock = clock
        self._events = events
        self._timeline = timeline

    async def serialize(
        self,
        events: Sequence[Event],
        viewer: Viewer,
        *,
        bundle_aggregations: bool = True,
        include_room_id: bool = True,
        event_format: Literal["client", "federation"] = "client",
    ) -> list[dict[str, Any]]:
        if not events:
            return []
        now = self._clock.time_msec()
        ids = [event.event_id for event in events]
        redactions = await self._redaction_events(ids)
        memberships = await self._memberships(viewer, [*events, *redactions.values()])
        previous = await self._events.get_events(
            [e.internal.replaces_state for e in events if e.internal.replaces_state is not None]
        )
        aggregations: dict[str, dict[str, Any]] = {}
        if bundle_aggregations:
            aggregations = await self._aggregations(
                [e for e in events if e.event_id not in redactions], viewer, now, memberships
            )
        result = []
        for event in events:
            body = self._client_event(event, viewer, now, redactions, include_room_id, memberships)
            replaced = previous.get(event.internal.replaces_state or "")
            if replaced is not None:
                body["unsigned"]["replaces_state"] = replaced.event_id
                body["unsigned"]["prev_sender"] = replaced.sender
                body["unsigned"]["prev_content"] = self._content_of(replaced, redactions)
            if event.event_id in aggregations:
                body["unsigned"]["m.relations"] = aggregations[event.event_id]
            if event_format == "federation":
                body = self._federation_event(event, body["unsigned"], redactions)
            result.append(body)
        return result

    async def _memberships(self, viewer: Viewer, events: Sequence[Event]) -> _Memberships:
        """The viewer's membership history around ``events``: one query per batch."""
        current = viewer.current_memberships
        placed = [e for e in events if e.internal.stream_ordering is not None]
        # Rooms where every event is at or after the viewer's current membership event
        # need no history: that membership holds for all of them.
        before_current = {
            e.room_id
            for e in placed
            if (latest := current.get(e.room_id)) is None
            or (e.internal.stream_ordering or 0) < latest[0]
        }
        history: dict[str, list[tuple[int, str]]] = {
            room_id: [current[room_id]] for room_id in {e.room_id for e in placed} - before_current
        }
        needing_history = [e for e in placed if e.room_id in before_current]
        if needing_history:
            known = [e.internal.stream_ordering or 0 for e in needing_history]
            history.update(
                await self._timeline.get_membership_history(
                    viewer.user_id,
                    {e.room_id for e in needing_history},
                    lowest=min(known),
                    highest=max(known),
                )
            )
        return _Memberships(history)

    async def serialize_one(self, event: Event, viewer: Viewer) -> dict[str, Any]:
        [body] = await self.serialize([event], viewer)
        return body

    def _client_event(
        self,
        event: Event,
        viewer: Viewer,
        now: int,
        redactions: dict[str, Event],
        include_room_id: bool,
        memberships: _Memberships,
    ) -> dict[str, Any]:
        redaction = redactions.get(event.event_id)
        body: dict[str, Any] = {
            "type": event.type,
            "content": self._content_of(event, redactions),
            "sender": event.sender,
            "event_id": event.event_id,
            "origin_server_ts": event.origin_server_ts,
        }
        if include_room_id:
            body["room_id"] = event.room_id
        if event.state_key is not None:
            body["state_key"] = event.state_key
        if event.type == "m.room.redaction" and event.redacts is not None:
            # v11 moved `redacts` into content; clients still look at the top level.
            body["redacts"] = event.redacts
        unsigned: dict[str, Any] = {"age": max(0, now - event.origin_server_ts)}
        internal = event.internal
        if (
            internal.txn_id is not None
            and event.sender == viewer.user_id
            and internal.device_id == viewer.device_id
        ):
            unsigned["transaction_id"] = internal.txn_id
        membership = memberships.at(event)
        if membership is not None:
            unsigned["membership"] = membership
        if redaction is not None:
            unsigned["redacted_because"] = self._client_event(
                redaction, viewer, now, {}, include_room_id, memberships
            )
        body["unsigned"] = unsigned
        return body

    def _federation_event(
        self, event: Event, unsigned: dict[str, Any], redactions: dict[str, Event]
    ) -> dict[str, Any]:
        """The PDU as stored (pruned if redacted), with its ID and ``unsigned``, as
        Synapse's ``event_format: federation`` gives it.
        spec: data/api/client-server/definitions/sync_filter.yaml (``event_format``)"""
        pdu = (
            prune_event_dict(event.pdu, event.room_version)
            if event.event_id in redactions
            else event.pdu
        )
        body = {key: value for key, value in pdu.items() if key != "unsigned"}
        body["event_id"] = event.event_id
        body["unsigned"] = {**pdu.get("unsigned", {}), **unsigned}
        return body

    def _content_of(self, event: Event, redactions: dict[str, Event]) -> dict[str, Any]:
        if event.event_id in redactions:
            content: dict[str, Any] = prune_event_dict(event.pdu, event.room_version).get(
                "content", {}
            )
            return content
        return event.content

    async def _redaction_events(self, event_ids: list[str]) -> dict[str, Event]:
        redaction_ids = await self._timeline.get_redactions(event_ids)
        loaded = await self._events.get_events(list(set(redaction_ids.values())))
        return {
            target: loaded[redaction]
            for target, redaction in redaction_ids.items()
            if redaction in loaded
        }

    async def _aggregations(
        self, events: Sequence[Event], viewer: Viewer, now: int, memberships: _Memberships
    ) -> dict[str, dict[str, Any]]:
        """event ID -> its ``m.relations`` bundle (only for events that have one)."""
        candidates = {
            e.event_id: e for e in events if not e.is_state() and _rel_type(e) != "m.replace"
        }
        if not candidates:
            return {}
        relations = await self._timeline.get_relations(list(candidates))
        child_ids = [row.event_id for rows in relations.values() for row in rows]
        children = await self._events.get_events(child_ids)
        bundles: dict[str, dict[str, Any]] = {}
        latest_in_threads: list[Event] = []
        thread_summaries: dict[str, dict[str, Any]] = {}
        for parent_id, rows in relations.items():
            parent = candidates[parent_id]
            bundle: dict[str, Any] = {}
            edits, thread, references = [], [], []
            for row in rows:
                child = children.get(row.event_id)
                if child is None or child.sender in viewer.ignored_users:
                    continue
                if row.rel_type == "m.replace":
                    if _valid_edit(parent, child):
                        edits.append(child)
                elif row.rel_type == "m.thread":
                    thread.append(child)
                elif row.rel_type == "m.reference":
                    references.append({"event_id": child.event_id})
            if edits:
                latest_edit = max(edits, key=lambda e: (e.origin_server_ts, e.event_id))
                bundle["m.replace"] = self._client_event(
                    latest_edit, viewer, now, {}, True, memberships
                )
            if thread:
                latest = max(thread, key=lambda e: e.internal.stream_ordering or 0)
                latest_in_threads.append(latest)
                thread_summaries[parent_id] = {
                    "count": len(thread),
                    "current_user_participated": parent.sender == viewer.user_id
                    or any(e.sender == viewer.user_id for e in thread),
                    "latest_event_id": latest.event_id,
                }
            if references:
                bundle["m.reference"] = {"chunk": references}
            if bundle or thread:
                bundles[parent_id] = bundle
        if thread_summaries:
            # The latest event of each thread is serialised like any event, with its
            # own aggregations (e.g. its latest edit).
            serialized = {
                body["event_id"]: body for body in await self.serialize(latest_in_threads, viewer)
            }
            for parent_id, summary in thread_summaries.items():
                bundles[parent_id]["m.thread"] = {
                    "latest_event": serialized[summary["latest_event_id"]],
                    "count": summary["count"],
                    "current_user_participated": summary["current_user_participated"],
                }
        return {event_id: bundle for event_id, bundle in bundles.items() if bundle}


class _Memberships:
    """The viewer's membership at any event of the rooms whose history it holds."""

    def __init__(self, history: Mapping[str, list[tuple[int, str]]]) -> None:
        self._positions = {room: [p for p, _ in rows] for room, rows in history.items()}
        self._values = {room: [m for _, m in rows] for room, rows in history.items()}

    def at(self, event: Event) -> str | None:
        """spec: client-server-api/_index.md#room-event-format (``unsigned.membership``):
        the membership "at the point of the event, including any changes caused by the
        event"; ``leave`` if the user had none yet.  None (omit) for outliers."""
        position = event.internal.stream_ordering
        if position is None:
            return None
        positions = self._positions.get(event.room_id)
        if not positions:
            return "leave"
        index = bisect_right(positions, position)
        return self._values[event.room_id][index - 1] if index else "leave"


def _rel_type(event: Event) -> str | None:
    relation = relation_of(event)
    return None if relation is None else relation[1]


def _valid_edit(original: Event, edit: Event) -> bool:
    """spec: modules/event_replacements.md#validity-of-replacement-events"""
    new_content = edit.content.get("m.new_content")
    return (
        original.room_id == edit.room_id
        and original.sender == edit.sender
        and original.type == edit.type
        and original.state_key is None
        and edit.state_key is None
        and _rel_type(original) != "m.replace"
        and (isinstance(new_content, dict) or original.type == "m.room.encrypted")
    )
