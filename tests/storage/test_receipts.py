"""Receipt storage on both engines: latest per (user, room, type, thread), never
backwards, each change a new position in the receipts stream."""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.receipts import Outcome, Receipt, ReceiptStore, SetResult
from tests.receipts.rooms import ALICE, BOB, CAROL, Rooms

PRIVATE = "m.read.private"


@pytest_twisted.ensureDeferred
async def test_a_receipt_moves_forward_with_a_new_position_each_time(db: Database) -> None:
    rooms = Rooms.on(db)
    store = ReceiptStore(db)
    room = await rooms.public_room(BOB)
    first, second = await rooms.message(room, ALICE), await rooms.message(room, ALICE)
    stored = await store.set_receipt(room, BOB, "m.read", None, first, 1000)
    moved = await store.set_receipt(room, BOB, "m.read", None, second, 2000)
    assert stored.outcome is moved.outcome is Outcome.STORED
    assert stored.stream_id is not None and moved.stream_id is not None
    assert moved.stream_id > stored.stream_id
    assert await store.get_max_position() == moved.stream_id
    receipts = await store.get_receipts(
        [room], 0, moved.stream_id, for_user=BOB, private_type=PRIVATE
    )
    assert receipts == [Receipt(room, BOB, "m.read", None, second, 2000, moved.stream_id)]


@pytest_twisted.ensureDeferred
async def test_a_receipt_never_moves_back_or_repeats(db: Database) -> None:
    rooms = Rooms.on(db)
    store = ReceiptStore(db)
    room = await rooms.public_room(BOB)
    first, second = await rooms.message(room, ALICE), await rooms.message(room, ALICE)
    latest = await store.set_receipt(room, BOB, "m.read", None, second, 1)
    assert (await store.set_receipt(room, BOB, "m.read", None, first, 2)).outcome is (
        Outcome.NOT_NEWER
    )
    assert (await store.set_receipt(room, BOB, "m.read", None, second, 3)).outcome is (
        Outcome.NOT_NEWER
    )
    assert await store.get_max_position() == latest.stream_id
    [receipt] = await store.get_receipts([room], 0, 10**9, for_user=BOB, private_type=PRIVATE)
    assert (receipt.event_id, receipt.ts) == (second, 1)


@pytest_twisted.ensureDeferred
async def test_types_and_threads_are_separate_receipts(db: Database) -> None:
    rooms = Rooms.on(db)
    store = ReceiptStore(db)
    room = await rooms.public_room(BOB)
    root = await rooms.message(room, ALICE)
    later = await rooms.message(room, ALICE)
    for receipt_type, thread in [
        ("m.read", None),
        ("m.read", "main"),
        ("m.read", root),
        (PRIVATE, None),
    ]:
        result = await store.set_receipt(room, BOB, receipt_type, thread, later, 5)
        assert result.outcome is Outcome.STORED
    # An earlier event is "not newer" only within its own (type, thread).
    assert (await store.set_receipt(room, BOB, PRIVATE, "main", root, 6)).outcome is (
        Outcome.STORED
    )
    receipts = await store.get_receipts([room], 0, 10**9, for_user=BOB, private_type=PRIVATE)
    assert sorted((r.receipt_type, r.thread_id or "", r.event_id) for r in receipts) == sorted(
        [
            ("m.read", "", later),
            ("m.read", "main", later),
            ("m.read", root, later),
            (PRIVATE, "", later),
            (PRIVATE, "main", root),
        ]
    )


@pytest_twisted.ensureDeferred
async def test_changes_are_read_by_position_window_and_room(db: Database) -> None:
    rooms = Rooms.on(db)
    store = ReceiptStore(db)
    room, other = await rooms.public_room(BOB, CAROL), await rooms.public_room(BOB)
    event, elsewhere = await rooms.message(room, ALICE), await rooms.message(other, ALICE)
    one = await store.set_receipt(room, BOB, "m.read", None, event, 1)
    two = await store.set_receipt(room, CAROL, "m.read", None, event, 2)
    three = await store.set_receipt(other, BOB, "m.read", None, elsewhere, 3)
    assert one.stream_id is not None and two.stream_id is not None
    assert three.stream_id is not None
    window = await store.get_receipts(
        [room, other], one.stream_id, two.stream_id, for_user=BOB, private_type=PRIVATE
    )
    assert [(r.user_id, r.stream_id) for r in window] == [(CAROL, two.stream_id)]
    only_other = await store.get_receipts([other], 0, 10**9, for_user=BOB, private_type=PRIVATE)
    assert [r.room_id for r in only_other] == [other]
    assert (
        await store.get_receipts(["!unknown:x"], 0, 10**9, for_user=BOB, private_type=PRIVATE) == []
    )


@pytest_twisted.ensureDeferred
async def test_private_receipts_are_read_only_by_their_owner(db: Database) -> None:
    rooms = Rooms.on(db)
    store = ReceiptStore(db)
    room = await rooms.public_room(BOB, CAROL)
    event = await rooms.message(room, ALICE)
    await store.set_receipt(room, BOB, PRIVATE, None, event, 1)
    await store.set_receipt(room, CAROL, "m.read", None, event, 2)
    as_bob = await store.get_receipts([room], 0, 10**9, for_user=BOB, private_type=PRIVATE)
    as_carol = await store.get_receipts([room], 0, 10**9, for_user=CAROL, private_type=PRIVATE)
    assert {(r.user_id, r.receipt_type) for r in as_bob} == {(BOB, PRIVATE), (CAROL, "m.read")}
    assert {(r.user_id, r.receipt_type) for r in as_carol} == {(CAROL, "m.read")}


@pytest_twisted.ensureDeferred
async def test_receipts_need_an_event_of_that_room(db: Database) -> None:
    rooms = Rooms.on(db)
    store = ReceiptStore(db)
    room, other = await rooms.public_room(BOB), await rooms.public_room(BOB)
    elsewhere = await rooms.message(other, ALICE)
    for event_id in (elsewhere, "$missing"):
        result = await store.set_receipt(room, BOB, "m.read", None, event_id, 1)
        assert result == SetResult(Outcome.UNKNOWN_EVENT)
    assert await store.get_max_position() == 0
