"""What unread counts are computed from, on both engines: the user's join, their read
marks, and the visible events after them, newest first and capped."""

from __future__ import annotations

import pytest_twisted

from homeserver.events.event import InternalMetadata
from homeserver.storage.database import Database
from homeserver.storage.receipts import ReceiptStore
from homeserver.storage.unread import UnreadStore
from tests.receipts.rooms import ALICE, BOB, CAROL, Rooms

READ_TYPES = ("m.read", "m.read.private")


@pytest_twisted.ensureDeferred
async def test_events_after_the_join_newest_first(db: Database) -> None:
    rooms = Rooms.on(db)
    room = await rooms.public_room(CAROL)
    await rooms.message(room, ALICE, "before bob")
    join = await rooms.send(room, "m.room.member", BOB, {"membership": "join"}, BOB)
    first, second = await rooms.message(room, ALICE), await rooms.message(room, CAROL)
    states = await UnreadStore(db).read_states(BOB, [room], READ_TYPES, scan_limit=100)
    state = states[room]
    assert state.joined_at == join.stream_ordering
    assert (state.unthreaded_mark, state.thread_marks) == (0, {})
    assert [(e.event_id, e.sender) for e in state.events] == [(second, CAROL), (first, ALICE)]
    assert state.events[0].stream_ordering > state.events[1].stream_ordering


@pytest_twisted.ensureDeferred
async def test_the_newest_read_or_private_receipt_is_the_mark(db: Database) -> None:
    rooms = Rooms.on(db)
    receipts = ReceiptStore(db)
    room = await rooms.public_room(BOB)
    sent = [await rooms.send(room, "m.room.message", ALICE, {"body": str(i)}) for i in range(4)]
    events = [s.event.event_id for s in sent]
    await receipts.set_receipt(room, BOB, "m.read", None, events[2], 1)
    await receipts.set_receipt(room, BOB, "m.read.private", None, events[0], 1)
    await receipts.set_receipt(room, BOB, "m.read", "main", events[3], 1)
    await receipts.set_receipt(room, BOB, "m.read.private", events[0], events[1], 1)
    [state] = (await UnreadStore(db).read_states(BOB, [room], READ_TYPES, scan_limit=100)).values()
    assert [e.event_id for e in state.events] == [events[3]]
    assert state.unthreaded_mark == sent[2].stream_ordering
    assert state.thread_marks == {
        "main": sent[3].stream_ordering,
        events[0]: sent[1].stream_ordering,
    }


@pytest_twisted.ensureDeferred
async def test_rejected_and_soft_failed_events_are_not_scanned(db: Database) -> None:
    rooms = Rooms.on(db)
    room_ids = [await rooms.public_room(BOB), await rooms.public_room(BOB)]
    visible = [await rooms.message(room_id, ALICE) for room_id in room_ids]
    # Each is the last event of its room: the store leaves such a room without
    # forward extremities, so nothing could be sent after it.
    for room_id, internal in zip(
        room_ids,
        [InternalMetadata(soft_failed=True), InternalMetadata(rejected_reason="auth")],
        strict=True,
    ):
        await rooms.send(room_id, "m.room.message", ALICE, {"body": "x"}, internal=internal)
    states = await UnreadStore(db).read_states(BOB, room_ids, READ_TYPES, scan_limit=100)
    assert [[e.event_id for e in states[room_id].events] for room_id in room_ids] == [
        [event_id] for event_id in visible
    ]


@pytest_twisted.ensureDeferred
async def test_the_scan_is_capped_per_room_keeping_the_newest(db: Database) -> None:
    rooms = Rooms.on(db)
    busy, quiet = await rooms.public_room(BOB), await rooms.public_room(BOB)
    sent = [await rooms.message(busy, ALICE, str(i)) for i in range(6)]
    only = await rooms.message(quiet, ALICE)
    states = await UnreadStore(db).read_states(BOB, [busy, quiet], READ_TYPES, scan_limit=4)
    assert [e.event_id for e in states[busy].events] == sent[::-1][:4]
    assert [e.event_id for e in states[quiet].events] == [only]


@pytest_twisted.ensureDeferred
async def test_only_joined_rooms_are_answered(db: Database) -> None:
    rooms = Rooms.on(db)
    joined, left, never = (
        await rooms.public_room(BOB),
        await rooms.public_room(BOB),
        await rooms.public_room(),
    )
    await rooms.leave(left, BOB)
    states = await UnreadStore(db).read_states(
        BOB, [joined, left, never, "!unknown:example.org"], READ_TYPES, scan_limit=10
    )
    assert list(states) == [joined]


@pytest_twisted.ensureDeferred
async def test_many_rooms_are_read_in_batches(db: Database) -> None:
    rooms = Rooms.on(db)
    room_ids = [await rooms.public_room(BOB) for _ in range(55)]
    messages = {room_id: await rooms.message(room_id, ALICE) for room_id in room_ids}
    states = await UnreadStore(db).read_states(BOB, room_ids, READ_TYPES, scan_limit=10)
    assert {room_id: [e.event_id for e in s.events] for room_id, s in states.items()} == {
        room_id: [event_id] for room_id, event_id in messages.items()
    }
