"""The relations handler in-process on both engines: recursion bounds, rooms,
history visibility and pagination past hidden events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import pytest_twisted
from signedjson.key import generate_signing_key
from twisted.internet import reactor

from homeserver.auth.tokens import Requester
from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.rooms.builder import EventDraft
from homeserver.rooms.pipeline import EventPipeline
from homeserver.rooms.reading import RoomReader
from homeserver.rooms.relations import (
    RECURSION_DEPTH,
    RelationsHandler,
    RelationsQuery,
    parse_threads_token,
)
from homeserver.rooms.serialize import EventSerializer
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.visibility import HistoryVisibilityFilter
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore

ALICE = "@alice:example.org"
BOB = "@bob:example.org"


@attrs.define
class Rooms:
    pipeline: EventPipeline
    relations: RelationsHandler

    async def send(
        self,
        room_id: str,
        sender: str,
        content: dict[str, Any],
        event_type: str = "m.room.message",
        state_key: str | None = None,
    ) -> str:
        draft = EventDraft(room_id, event_type, sender, content, state_key=state_key)
        return (await self.pipeline.send(draft)).event.event_id

    async def relate(
        self, room_id: str, sender: str, parent: str, rel_type: str = "org.example.rel"
    ) -> str:
        return await self.send(
            room_id,
            sender,
            {"body": "x", "m.relates_to": {"rel_type": rel_type, "event_id": parent}},
        )

    async def room(self, history_visibility: str = "shared") -> str:
        """Alice's public room with the given history visibility."""
        [created, *_] = await self.pipeline.create_room("10", ALICE, {})
        room_id = created.event.room_id
        await self.send(room_id, ALICE, {"membership": "join"}, "m.room.member", ALICE)
        await self.send(room_id, ALICE, {"users": {ALICE: 100}}, "m.room.power_levels", "")
        await self.send(room_id, ALICE, {"join_rule": "public"}, "m.room.join_rules", "")
        await self.send(
            room_id,
            ALICE,
            {"history_visibility": history_visibility},
            "m.room.history_visibility",
            "",
        )
        return room_id

    async def join(self, room_id: str, user_id: str) -> None:
        await self.send(room_id, user_id, {"membership": "join"}, "m.room.member", user_id)


@pytest_twisted.async_yield_fixture
async def rooms(db: Database) -> AsyncIterator[Rooms]:
    clock = Clock(reactor)
    state_store = StateStore(db)
    events = EventStore(db, state_store)
    timeline = TimelineStore(db, events)
    state = RoomStateReader(events, state_store, timeline)
    visibility = HistoryVisibilityFilter(events, state)
    serializer = EventSerializer(clock, events, timeline)

    async def no_one_ignored(user_id: str) -> frozenset[str]:
        return frozenset()

    reader = RoomReader(
        events=events,
        timeline=timeline,
        state=state,
        visibility=visibility,
        serializer=serializer,
        ignored_users=no_one_ignored,
    )
    yield Rooms(
        EventPipeline(
            server_name="example.org",
            signing_key=generate_signing_key("a_test"),
            clock=clock,
            events=events,
            state=state_store,
        ),
        RelationsHandler(
            events=events,
            timeline=timeline,
            visibility=visibility,
            serializer=serializer,
            reader=reader,
        ),
    )


def requester(user_id: str) -> Requester:
    return Requester(user_id, "DEVICE", 0, False)


def ids(body: dict[str, Any]) -> list[str]:
    return [event["event_id"] for event in body["chunk"]]


@pytest_twisted.ensureDeferred
async def test_recursion_stops_three_steps_from_the_parent(rooms: Rooms) -> None:
    room_id = await rooms.room()
    parent = await rooms.send(room_id, ALICE, {"body": "parent"})
    chain = []
    previous = parent
    for _ in range(RECURSION_DEPTH + 1):
        previous = await rooms.relate(room_id, ALICE, previous)
        chain.append(previous)
    direct = await rooms.relations.relations(
        requester(ALICE), room_id, parent, RelationsQuery(limit=10)
    )
    assert ids(direct) == chain[:1]
    deep = await rooms.relations.relations(
        requester(ALICE), room_id, parent, RelationsQuery(limit=10, recurse=True)
    )
    assert ids(deep) == chain[:RECURSION_DEPTH][::-1]
    assert deep["recursion_depth"] == RECURSION_DEPTH
    # A type filter that the middle of the chain fails cuts the walk there.
    filtered = await rooms.relations.relations(
        requester(ALICE),
        room_id,
        parent,
        RelationsQuery(limit=10, recurse=True, event_type="m.reaction"),
    )
    assert ids(filtered) == []


@pytest_twisted.ensureDeferred
async def test_relations_from_another_room_do_not_count(rooms: Rooms) -> None:
    room_id = await rooms.room()
    other = await rooms.room()
    parent = await rooms.send(room_id, ALICE, {"body": "parent"})
    await rooms.relate(other, ALICE, parent)
    same_room = await rooms.relate(room_id, ALICE, parent)
    body = await rooms.relations.relations(
        requester(ALICE), room_id, parent, RelationsQuery(limit=10)
    )
    assert ids(body) == [same_room]
    # Nor can the parent be reached through the other room.
    with pytest.raises(MatrixError) as raised:
        await rooms.relations.relations(requester(ALICE), other, parent, RelationsQuery(limit=10))
    assert raised.value.status == 404


@pytest_twisted.ensureDeferred
async def test_pages_skip_what_history_visibility_hides(rooms: Rooms) -> None:
    room_id = await rooms.room(history_visibility="joined")
    parent_before = await rooms.send(room_id, ALICE, {"body": "before bob"})
    await rooms.relate(room_id, ALICE, parent_before)
    await rooms.join(room_id, BOB)
    parent = await rooms.send(room_id, ALICE, {"body": "parent"})
    # Bob leaves and comes back: what was said while he was away is hidden from him.
    seen_first = await rooms.relate(room_id, ALICE, parent)
    await rooms.send(room_id, BOB, {"membership": "leave"}, "m.room.member", BOB)
    hidden = [await rooms.relate(room_id, ALICE, parent) for _ in range(3)]
    await rooms.join(room_id, BOB)
    seen_last = await rooms.relate(room_id, ALICE, parent)

    alices = await rooms.relations.relations(
        requester(ALICE), room_id, parent, RelationsQuery(limit=10)
    )
    assert ids(alices) == [seen_last, *hidden[::-1], seen_first]
    first = await rooms.relations.relations(
        requester(BOB), room_id, parent, RelationsQuery(limit=1)
    )
    assert ids(first) == [seen_last]
    second = await rooms.relations.relations(
        requester(BOB), room_id, parent, RelationsQuery(limit=1, from_token=first["next_batch"])
    )
    assert ids(second) == [seen_first]
    assert "next_batch" not in second
    # A parent Bob cannot see is "not found" for him.
    with pytest.raises(MatrixError) as raised:
        await rooms.relations.relations(
            requester(BOB), room_id, parent_before, RelationsQuery(limit=10)
        )
    assert raised.value.status == 404


@pytest_twisted.ensureDeferred
async def test_thread_roots_hidden_by_history_visibility_are_skipped(rooms: Rooms) -> None:
    room_id = await rooms.room(history_visibility="joined")
    early = await rooms.send(room_id, ALICE, {"body": "early root"})
    await rooms.join(room_id, BOB)
    late = await rooms.send(room_id, ALICE, {"body": "late root"})
    await rooms.relate(room_id, ALICE, late, "m.thread")
    await rooms.relate(room_id, ALICE, early, "m.thread")
    alices = await rooms.relations.threads(
        requester(ALICE), room_id, include="all", from_token=None, limit=5
    )
    assert ids(alices) == [early, late]
    bobs = await rooms.relations.threads(
        requester(BOB), room_id, include="all", from_token=None, limit=1
    )
    assert ids(bobs) == [late]
    assert "next_batch" not in bobs


def test_threads_tokens_are_checked() -> None:
    assert parse_threads_token("t42") == 42
    for bad in ("42", "t", "t-1", "t4x", "t٣", "s42", "t" + "9" * 30):
        with pytest.raises(MatrixError) as raised:
            parse_threads_token(bad)
        assert raised.value.errcode == "M_INVALID_PARAM", bad
