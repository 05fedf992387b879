"""FederationOutboundStore on both engines: the newest position per (destination,
room), acknowledged positions that only move up, the rooms a destination missed,
the destinations behind at start, memberships as of a position, durable EDUs.
"""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.federation_outbound import (
    FederationOutboundStore,
    MissedRoom,
    QueuedPdu,
)
from tests.receipts.rooms import ALICE, Rooms

BOB = "@bob:remote.test"


async def _position(rooms: Rooms, event_id: str) -> int:
    event = (await rooms.events.get_events([event_id]))[event_id]
    assert event.internal.stream_ordering is not None
    return event.internal.stream_ordering


@pytest_twisted.ensureDeferred
async def test_missed_rooms_are_the_newest_event_per_room_past_the_acknowledged_position(
    db: Database,
) -> None:
    rooms = Rooms.on(db)
    store = FederationOutboundStore(db)
    room1 = await rooms.public_room()
    room2 = await rooms.public_room()
    nid1 = (await rooms.events.get_room(room1)).room_nid  # type: ignore[union-attr]
    nid2 = (await rooms.events.get_room(room2)).room_nid  # type: ignore[union-attr]
    a = await rooms.message(room1, ALICE, "a")
    b = await rooms.message(room1, ALICE, "b")
    c = await rooms.message(room2, ALICE, "c")
    pa, pb, pc = [await _position(rooms, e) for e in (a, b, c)]

    assert await store.get_acked_position("remote.test") is None
    queued = [
        QueuedPdu("remote.test", nid1, pa),
        QueuedPdu("remote.test", nid1, pb),
        QueuedPdu("remote.test", nid2, pc),
    ]
    await store.record_queued(queued)
    await store.record_queued(queued[:1])  # a replayed batch moves nothing back
    # First met just below its first PDU.
    assert await store.get_acked_position("remote.test") == pa - 1
    assert await store.destinations_behind() == ["remote.test"]
    assert await store.missed_rooms("remote.test", pa - 1, 10) == [
        MissedRoom(nid1, pb, b),
        MissedRoom(nid2, pc, c),
    ]
    assert await store.missed_rooms("remote.test", pa - 1, 1) == [MissedRoom(nid1, pb, b)]

    await store.set_acked_position("remote.test", pb)
    assert await store.missed_rooms("remote.test", pb, 10) == [MissedRoom(nid2, pc, c)]
    await store.set_acked_position("remote.test", pa)  # never down
    assert await store.get_acked_position("remote.test") == pb
    await store.set_acked_position("remote.test", pc)
    assert await store.destinations_behind() == []
    assert await store.missed_rooms("remote.test", pc, 10) == []


@pytest_twisted.ensureDeferred
async def test_memberships_are_joins_and_those_changed_after_a_position(db: Database) -> None:
    rooms = Rooms.on(db)
    store = FederationOutboundStore(db)
    room_id = await rooms.public_room()
    nid = (await rooms.events.get_room(room_id)).room_nid  # type: ignore[union-attr]
    await rooms.join(room_id, BOB)
    before_leave = await rooms.events.get_max_stream_ordering()
    await rooms.leave(room_id, BOB)

    rows = {row.user_id: row for row in await store.memberships(nid, before_leave)}
    assert rows[ALICE].membership == "join"
    bob = rows[BOB]
    assert bob.membership == "leave"
    assert bob.position is not None and bob.position > before_leave
    # Past the leave, only the joins.
    now = await rooms.events.get_max_stream_ordering()
    assert {row.user_id for row in await store.memberships(nid, now)} == {ALICE}


@pytest_twisted.ensureDeferred
async def test_durable_edus_are_kept_in_order_until_deleted(db: Database) -> None:
    store = FederationOutboundStore(db)
    first = await store.add_edu("a.test", "m.direct_to_device", {"n": 1, "text": "é"}, now=1)
    second = await store.add_edu("a.test", "m.device_list_update", {"n": 2}, now=2)
    await store.add_edu("b.test", "m.direct_to_device", {"n": 3}, now=3)
    assert first < second
    assert await store.destinations_with_edus() == ["a.test", "b.test"]
    pending = await store.pending_edus("a.test", 10)
    assert [(e.edu_id, e.edu_type, e.content) for e in pending] == [
        (first, "m.direct_to_device", {"n": 1, "text": "é"}),
        (second, "m.device_list_update", {"n": 2}),
    ]
    assert [e.edu_id for e in await store.pending_edus("a.test", 1)] == [first]
    await store.delete_edus([first, second])
    assert await store.pending_edus("a.test", 10) == []
    assert await store.destinations_with_edus() == ["b.test"]


@pytest_twisted.ensureDeferred
async def test_acknowledged_positions_of_many_destinations_move_up_in_one_write(
    db: Database,
) -> None:
    store = FederationOutboundStore(db)
    await store.set_acked_position("a.test", 10)
    await store.set_acked_positions({"a.test": 5, "b.test": 7, "c.test": 3})
    # a.test never moves down; the others are created.
    assert await store.get_acked_position("a.test") == 10
    assert await store.get_acked_position("b.test") == 7
    assert await store.get_acked_position("c.test") == 3
    await store.set_acked_positions({"a.test": 12, "b.test": 6})
    assert await store.get_acked_position("a.test") == 12
    assert await store.get_acked_position("b.test") == 7
    await store.set_acked_positions({})  # nothing to write
