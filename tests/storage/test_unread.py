"""What unread counts are computed from, on both engines: the user's join, their read
marks, the visible events after a position (oldest first, in batches) and the
checkpoints counts are moved forward from."""

from __future__ import annotations

import pytest_twisted

from homeserver.events.event import InternalMetadata
from homeserver.storage.database import Database
from homeserver.storage.receipts import ReceiptStore
from homeserver.storage.unread import Checkpoint, ThreadCheckpoint, UnreadStore
from tests.receipts.rooms import ALICE, BOB, CAROL, Rooms

READ_TYPES = ("m.read", "m.read.private")


@pytest_twisted.ensureDeferred
async def test_events_after_the_join_newest_first(db: Database) -> None:
    rooms = Rooms.on(db)
    room = await rooms.public_room(CAROL)
    await rooms.message(room, ALICE, "before bob")
    join = await rooms.send(room, "m.room.member", BOB, {"membership": "join"}, BOB)
    first, second = await rooms.message(room, ALICE), await rooms.message(room, CAROL)
    store = UnreadStore(db)
    state = (await store.read_states(BOB, [room], READ_TYPES))[room]
    assert state.joined_at == join.stream_ordering
    assert (state.unthreaded_mark, state.thread_marks, state.checkpoint) == (0, {}, None)
    found = await store.events_after({state.room_nid: state.joined_at}, 10**9, 100)
    events = found[state.room_nid]
    assert [(e.event_id, e.sender) for e in events] == [(first, ALICE), (second, CAROL)]
    assert events[0].stream_ordering < events[1].stream_ordering
    # Nothing past the position asked for.
    found = await store.events_after(
        {state.room_nid: state.joined_at}, events[0].stream_ordering, 100
    )
    assert [e.event_id for e in found[state.room_nid]] == [first]


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
    [state] = (await UnreadStore(db).read_states(BOB, [room], READ_TYPES)).values()
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
    store = UnreadStore(db)
    states = await store.read_states(BOB, room_ids, READ_TYPES)
    found = await store.events_after(
        {states[room_id].room_nid: states[room_id].joined_at for room_id in room_ids}, 10**9, 100
    )
    assert [[e.event_id for e in found[states[room_id].room_nid]] for room_id in room_ids] == [
        [event_id] for event_id in visible
    ]


@pytest_twisted.ensureDeferred
async def test_the_scan_is_batched_per_room_oldest_first(db: Database) -> None:
    rooms = Rooms.on(db)
    busy, quiet = await rooms.public_room(BOB), await rooms.public_room(BOB)
    sent = [await rooms.message(busy, ALICE, str(i)) for i in range(6)]
    only = await rooms.message(quiet, ALICE)
    store = UnreadStore(db)
    states = await store.read_states(BOB, [busy, quiet], READ_TYPES)
    b, q = states[busy], states[quiet]
    found = await store.events_after({b.room_nid: b.joined_at, q.room_nid: q.joined_at}, 10**9, 4)
    assert [e.event_id for e in found[b.room_nid]] == sent[:4]
    assert [e.event_id for e in found[q.room_nid]] == [only]
    rest = await store.events_after({b.room_nid: found[b.room_nid][-1].stream_ordering}, 10**9, 4)
    assert [e.event_id for e in rest[b.room_nid]] == sent[4:]


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
        BOB, [joined, left, never, "!unknown:example.org"], READ_TYPES
    )
    assert list(states) == [joined]


@pytest_twisted.ensureDeferred
async def test_many_rooms_are_read_in_batches(db: Database) -> None:
    rooms = Rooms.on(db)
    room_ids = [await rooms.public_room(BOB) for _ in range(55)]
    messages = {room_id: await rooms.message(room_id, ALICE) for room_id in room_ids}
    store = UnreadStore(db)
    states = await store.read_states(BOB, room_ids, READ_TYPES)
    found = await store.events_after({s.room_nid: s.joined_at for s in states.values()}, 10**9, 10)
    assert {room_id: [e.event_id for e in found[s.room_nid]] for room_id, s in states.items()} == {
        room_id: [event_id] for room_id, event_id in messages.items()
    }
    counts = await store.joined_member_counts([s.room_nid for s in states.values()])
    assert set(counts.values()) == {2}


@pytest_twisted.ensureDeferred
async def test_checkpoints_are_saved_replaced_and_read_per_user(db: Database) -> None:
    rooms = Rooms.on(db)
    store = UnreadStore(db)
    room = await rooms.public_room(BOB, CAROL)
    nid = (await store.read_states(BOB, [room], READ_TYPES))[room].room_nid
    first = Checkpoint(
        5,
        9,
        "rules-1",
        {"main": ThreadCheckpoint(0, 3, 1), "$root": ThreadCheckpoint(7, 2, 0)},
    )
    await store.save_checkpoints(BOB, {nid: first})
    assert (await store.read_states(BOB, [room], READ_TYPES))[room].checkpoint == first
    assert (await store.read_states(CAROL, [room], READ_TYPES))[room].checkpoint is None
    # Saving again replaces every row of the room: the thread left out is gone.
    second = Checkpoint(6, 12, "rules-2", {"main": ThreadCheckpoint(0, 1, 1)})
    await store.save_checkpoints(BOB, {nid: second})
    assert (await store.read_states(BOB, [room], READ_TYPES))[room].checkpoint == second
