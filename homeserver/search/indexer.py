"""Keeping the search index: a reader of the events stream at its own position.

The indexer is an :class:`EventStreamConsumer` named ``search_index`` that starts
from the beginning of the stream, so a server that had messages before search
existed indexes its history, and that could run in a process of its own.  It
indexes the keys the spec names — ``content.body`` of ``m.room.message``,
``content.name`` of ``m.room.name``, ``content.topic`` of ``m.room.topic`` (and the
``text/plain`` bodies of its ``m.topic``) — and nothing of an ``m.room.encrypted``
event, which has no plaintext.  An edit (``m.replace``) is indexed under the edit
event with its new text (``m.new_content.body``), not its ``* fallback``.

Not indexed, and removed when it happens later:
- an encrypted room, whole (spec: "The search will *not* include rooms that are end
  to end encrypted"): an ``m.room.encryption`` state event drops the room's rows
  and marks it in ``search_rooms``; a room first met while reading history is
  checked against its current state, so history of a room encrypted later is never
  indexed;
- a redacted event, and the edits of a redacted event (a redaction removes both; an
  event, or an edit of an event, already redacted when reached is not indexed).

For each room the indexer also records the first indexed event sent under
``shared`` or ``world_readable`` history visibility (``search_rooms.first_open``):
``/search`` starts a user's scope in a room at the earlier of it and the user's
first membership, as nothing before both can be visible to them.

Every write is idempotent, as the consumer delivers at least once; words are split
on the database thread (storage.search), not the reactor.

spec: client-server-api/modules/search.md#room_events
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from twisted.internet.interfaces import IReactorTime

from homeserver.events.event import Event
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.visibility import DEFAULT_HISTORY_VISIBILITY, HISTORY_VISIBILITY_KEY
from homeserver.storage.events import EventStore, RoomRecord
from homeserver.storage.search import (
    FLAG_HAS_URL,
    MEDIA_KINDS,
    IndexedEvent,
    IndexedRoom,
    RoomFacts,
    SearchStore,
)
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.storage.timeline import TimelineStore
from homeserver.streams.consumer import EventStreamConsumer, StreamedEvent

CONSUMER_NAME = "search_index"

#: Event type -> the key searched (``keys`` in the request).
INDEXED_KEYS = {
    "m.room.message": "content.body",
    "m.room.name": "content.name",
    "m.room.topic": "content.topic",
}
ENCRYPTION_KEY = ("m.room.encryption", "")
#: History visibilities under which others than the members of the moment may read.
_OPEN_VISIBILITIES = frozenset({"shared", "world_readable"})


def edited_event(event: Event) -> str | None:
    """The event an ``m.replace`` edit replaces, or None."""
    relates_to = event.content.get("m.relates_to")
    if not isinstance(relates_to, Mapping) or relates_to.get("rel_type") != "m.replace":
        return None
    original = relates_to.get("event_id")
    return original if isinstance(original, str) else None


def searchable_text(event: Event) -> str | None:
    """The text of ``event`` that search covers, or None if it has none."""
    content = event.content
    if event.type == "m.room.message":
        new_content = content.get("m.new_content")
        if edited_event(event) is not None and isinstance(new_content, Mapping):
            # spec: the edit's body is a fallback ("* new text"); m.new_content is
            # what the message now says.
            return _string(new_content.get("body"))
        return _string(content.get("body"))
    if event.type == "m.room.name" and event.state_key == "":
        return _string(content.get("name"))
    if event.type == "m.room.topic" and event.state_key == "":
        parts = [_string(content.get("topic"))]
        # spec: "as well as the body of the text/plain representation in m.topic".
        topic = content.get("m.topic")
        blocks = topic.get("m.text") if isinstance(topic, Mapping) else None
        if isinstance(blocks, list):
            parts.extend(
                _string(block.get("body"))
                for block in blocks
                if isinstance(block, Mapping)
                and block.get("mimetype", "text/plain") == "text/plain"
            )
        found = [part for part in parts if part]
        return "\n".join(dict.fromkeys(found)) if found else None
    return None


def flags_of(event: Event) -> int:
    """``search_events.flags``: has a string ``url``, and the media kind of a message."""
    content: Mapping[str, Any] = event.content
    flags = FLAG_HAS_URL if isinstance(content.get("url"), str) else 0
    msgtype = content.get("msgtype")
    if event.type == "m.room.message" and isinstance(msgtype, str) and msgtype.startswith("m."):
        flags |= MEDIA_KINDS.get(msgtype[2:], 0) << 1
    return flags


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class SearchIndexer:
    def __init__(
        self,
        *,
        store: SearchStore,
        events: EventStore,
        timeline: TimelineStore,
        state: RoomStateReader,
        consumers: StreamConsumerStore,
        reactor: IReactorTime,
        poll_interval_s: float = 5.0,
        retry_delay_s: float = 5.0,
    ) -> None:
        self._store = store
        self._events = events
        self._timeline = timeline
        self._state = state
        self.consumer = EventStreamConsumer(
            name=CONSUMER_NAME,
            store=consumers,
            events=events,
            reactor=reactor,
            handle=self.handle,
            start_from_beginning=True,
            poll_interval_s=poll_interval_s,
            # Indexing an event again writes the same row.
            write_behind=True,
            retry_delay_s=retry_delay_s,
        )

    def on_new_event(self, event: Event, position: int) -> None:
        """``pipeline.on_new_event``: read the stream now rather than at the next poll."""
        self.consumer.poke()

    async def handle(self, batch: Sequence[StreamedEvent]) -> None:
        rooms = await self._rooms(batch)
        known = await self._store.indexed_rooms([room.room_nid for room in rooms.values()])
        facts = await self._encryption(batch, rooms, known)
        encrypted = {nid for nid, room in known.items() if room.encrypted} | {
            nid for nid, fact in facts.items() if fact.encrypted
        }
        candidates = [
            e
            for e in batch
            if e.event.type in INDEXED_KEYS
            and e.event.room_id in rooms
            and rooms[e.event.room_id].room_nid not in encrypted
        ]
        skipped = await self._redacted(batch, candidates)
        added: list[tuple[StreamedEvent, IndexedEvent]] = []
        for streamed in candidates:
            if streamed.event.event_id in skipped:
                continue
            found = searchable_text(streamed.event)
            if found is not None:
                room_nid = rooms[streamed.event.room_id].room_nid
                added.append(
                    (
                        streamed,
                        IndexedEvent(streamed.position, room_nid, flags_of(streamed.event), found),
                    )
                )
        await self._first_open(added, known, facts)
        removed = await self._removed(batch)
        await self._store.update([doc for _, doc in added], removed, facts)

    async def _rooms(self, batch: Sequence[StreamedEvent]) -> dict[str, RoomRecord]:
        rooms: dict[str, RoomRecord] = {}
        for room_id in sorted({e.event.room_id for e in batch}):
            room = await self._events.get_room(room_id)
            if room is not None:
                rooms[room_id] = room
        return rooms

    async def _encryption(
        self,
        batch: Sequence[StreamedEvent],
        rooms: Mapping[str, RoomRecord],
        known: Mapping[int, IndexedRoom],
    ) -> dict[int, RoomFacts]:
        """Rooms found encrypted by this batch: an ``m.room.encryption`` event in it,
        or, for a room the index has not met yet, its current state."""
        facts: dict[int, RoomFacts] = {}
        for streamed in batch:
            event = streamed.event
            if (event.type, event.state_key) == ENCRYPTION_KEY and event.room_id in rooms:
                facts[rooms[event.room_id].room_nid] = RoomFacts(encrypted=True)
        indexed_rooms = {e.event.room_id for e in batch if e.event.type in INDEXED_KEYS}
        for room_id in sorted(indexed_rooms & set(rooms)):
            room = rooms[room_id]
            if room.room_nid in known or room.room_nid in facts:
                continue
            # Reading history from the start: a room encrypted later must not have
            # its plaintext past indexed until the indexer reaches the encryption.
            group = room.current_state_group
            if ENCRYPTION_KEY in await self._state.state_ids_for_keys(group, [ENCRYPTION_KEY]):
                facts[room.room_nid] = RoomFacts(encrypted=True)
        return facts

    async def _redacted(
        self, batch: Sequence[StreamedEvent], candidates: Sequence[StreamedEvent]
    ) -> set[str]:
        """Candidates not to index: redacted (in this batch or before), or edits of a
        redacted event."""
        redacted = {e.event.redacts for e in batch if e.event.redacts is not None}
        originals = {
            e.event.event_id: original
            for e in candidates
            if (original := edited_event(e.event)) is not None
        }
        asked = [e.event.event_id for e in candidates] + list(originals.values())
        if asked:
            redacted |= set(await self._timeline.get_redactions(asked))
        skipped = {e.event.event_id for e in candidates if e.event.event_id in redacted}
        skipped |= {edit for edit, original in originals.items() if original in redacted}
        return skipped

    async def _removed(self, batch: Sequence[StreamedEvent]) -> set[int]:
        """Positions to drop: events redacted by this batch, and their edits."""
        #: redacted event ID -> the room of its redaction (which must be its own).
        targets = {e.event.redacts: e.event.room_id for e in batch if e.event.redacts is not None}
        if not targets:
            return set()
        loaded = await self._events.get_events(list(targets))
        removed = {
            event.internal.stream_ordering
            for event in loaded.values()
            if event.internal.stream_ordering is not None
            and event.type in INDEXED_KEYS
            and targets[event.event_id] == event.room_id
        }
        # The event path drops the redacted event's own relations, not the edits
        # pointing at it: those are still listed.
        edits = await self._timeline.get_relations(list(targets), rel_type="m.replace")
        for original, rows in edits.items():
            if original in loaded and targets[original] == loaded[original].room_id:
                removed.update(row.stream_ordering for row in rows)
        return removed

    async def _first_open(
        self,
        added: Sequence[tuple[StreamedEvent, IndexedEvent]],
        known: Mapping[int, IndexedRoom],
        facts: dict[int, RoomFacts],
    ) -> None:
        """Record each room met, and the first event indexed under shared or
        world_readable visibility where none is known before it."""
        rules: dict[int | None, bool] = {}
        for streamed, doc in added:
            nid = doc.room_nid
            room = known.get(nid)
            fact = facts.get(nid, RoomFacts())
            first = [
                p for p in (room.first_open if room else None, fact.first_open) if p is not None
            ]
            if first and min(first) <= doc.stream_ordering:
                if room is None:
                    facts.setdefault(nid, fact)
                continue
            group = streamed.event.internal.state_group_before
            if group not in rules:
                rules[group] = await self._is_open(group)
            if rules[group]:
                fact = attrs.evolve(fact, first_open=doc.stream_ordering)
            facts[nid] = fact

    async def _is_open(self, state_group: int | None) -> bool:
        """Whether the history visibility in the state ``state_group`` lets others
        than the members of the moment read (the default, ``shared``, does)."""
        ids = await self._state.state_ids_for_keys(state_group, [HISTORY_VISIBILITY_KEY])
        rule: Any = DEFAULT_HISTORY_VISIBILITY
        if HISTORY_VISIBILITY_KEY in ids:
            loaded = await self._events.get_events([ids[HISTORY_VISIBILITY_KEY]])
            event = loaded.get(ids[HISTORY_VISIBILITY_KEY])
            if event is not None:
                rule = event.content.get("history_visibility", DEFAULT_HISTORY_VISIBILITY)
        return rule in _OPEN_VISIBILITIES
