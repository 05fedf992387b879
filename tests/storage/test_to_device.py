"""ToDeviceStore on both engines: sends resolved against the recipients' devices, one
position per send, idempotent transaction IDs (concurrent ones too), ranges, deletion
up to a position, the in-memory answers, and messages deleted with their device.

spec: client-server-api/modules/send_to_device.md
"""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import defer

from homeserver.storage.database import Database
from homeserver.storage.devices import DeviceStore
from homeserver.storage.to_device import SendKey, StoredMessage, ToDeviceStore

ALICE = "@alice:hs"
BOB = "@bob:hs"
FROM_ALICE = SendKey(ALICE, "A1", 0)
NOW = 1_700_000_000_000


async def add_devices(db: Database, user_id: str, *device_ids: str) -> None:
    devices = DeviceStore(db)
    for device_id in device_ids:
        await devices.add_device_with_token(
            user_id, device_id, f"hash-{user_id}-{device_id}", created_ts=0
        )


async def contents(store: ToDeviceStore, user_id: str, device_id: str) -> list[dict[str, Any]]:
    messages = await store.get_messages(user_id, device_id, 0, 2**62, 1000)
    return [message.content for message in messages]


@pytest_twisted.ensureDeferred
async def test_a_send_reaches_existing_devices_at_one_position(db: Database) -> None:
    await add_devices(db, BOB, "B1", "B2", "B3")
    store = ToDeviceStore(db)
    messages: dict[str, Any] = {
        BOB: {"*": {"all": True}, "B2": {"own": True}, "GONE": {"x": 1}},
        "@nobody:hs": {"*": {"x": 1}},
    }
    enqueued = await store.enqueue(FROM_ALICE, "m.dummy", "t1", messages, now_ms=NOW)
    assert enqueued is not None
    assert sorted(enqueued.recipients) == [(BOB, "B1"), (BOB, "B2"), (BOB, "B3")]
    await store.wait_until_visible(enqueued.position)
    assert await store.current_position() == enqueued.position
    assert await store.get_messages(BOB, "B1", 0, enqueued.position, 10) == [
        StoredMessage(enqueued.position, ALICE, "m.dummy", {"all": True})
    ]
    assert await contents(store, BOB, "B2") == [{"own": True}]
    assert await contents(store, BOB, "GONE") == []


@pytest_twisted.ensureDeferred
async def test_a_transaction_id_queues_once_even_concurrently(db: Database) -> None:
    await add_devices(db, BOB, "B1")
    store = ToDeviceStore(db)
    messages = {BOB: {"B1": {"n": 1}}}
    results = await defer.gatherResults(
        [
            defer.ensureDeferred(store.enqueue(FROM_ALICE, "m.dummy", "same", messages, now_ms=NOW))
            for _ in range(6)
        ]
    )
    assert sum(result is not None for result in results) == 1
    # The same ID from another device, token, or for another type is another send.
    for sender, message_type in [
        (SendKey(ALICE, "A2", 0), "m.dummy"),
        (SendKey(ALICE, "", 17), "m.dummy"),
        (FROM_ALICE, "m.other"),
    ]:
        assert await store.enqueue(sender, message_type, "same", messages, now_ms=NOW) is not None
    # A new store (a restart) still knows the transaction.
    assert (
        await ToDeviceStore(db).enqueue(FROM_ALICE, "m.dummy", "same", messages, now_ms=NOW) is None
    )
    assert await contents(store, BOB, "B1") == [{"n": 1}] * 4


@pytest_twisted.ensureDeferred
async def test_ranges_deletion_and_the_in_memory_answers(db: Database) -> None:
    await add_devices(db, BOB, "B1", "B2")
    store = ToDeviceStore(db)
    start = await store.current_position()
    positions = []
    for n in range(5):
        enqueued = await store.enqueue(
            FROM_ALICE, "m.dummy", f"t{n}", {BOB: {"B1": {"n": n}}}, now_ms=NOW
        )
        assert enqueued is not None
        positions.append(enqueued.position)
    assert positions == sorted(positions)
    assert await store.has_messages_after(BOB, "B1", start) is True
    assert await store.has_messages_after(BOB, "B1", positions[-1]) is False
    assert await store.has_messages_after(BOB, "B2", start) is False
    page = await store.get_messages(BOB, "B1", positions[0], positions[-1], 2)
    assert [message.content["n"] for message in page] == [1, 2]
    await store.delete_messages_up_to(BOB, "B1", positions[2])
    assert [c["n"] for c in await contents(store, BOB, "B1")] == [3, 4]
    # Deleting less, or again, changes nothing.
    await store.delete_messages_up_to(BOB, "B1", positions[1])
    await store.delete_messages_up_to(BOB, "B1", positions[-1])
    await store.delete_messages_up_to(BOB, "B1", positions[-1])
    assert await contents(store, BOB, "B1") == []
    # A store started later knows nothing in memory below its start: it asks.
    restarted = ToDeviceStore(db)
    assert await restarted.current_position() == positions[-1]
    assert await restarted.has_messages_after(BOB, "B1", start) is None
    assert await restarted.has_messages_after(BOB, "B1", positions[-1]) is False


@pytest_twisted.ensureDeferred
async def test_messages_go_with_their_device(db: Database) -> None:
    await add_devices(db, BOB, "B1", "B2", "B3")
    store = ToDeviceStore(db)
    await store.enqueue(FROM_ALICE, "m.dummy", "t1", {BOB: {"*": {"n": 1}}}, now_ms=NOW)
    devices = DeviceStore(db)
    await devices.delete_devices(BOB, ["B1"])
    assert await contents(store, BOB, "B1") == []
    assert await contents(store, BOB, "B2") == [{"n": 1}]
    await devices.delete_all_devices(BOB, except_device_id="B3")
    assert await contents(store, BOB, "B2") == []
    assert await contents(store, BOB, "B3") == [{"n": 1}]
    # A deleted sender device's transactions go too: its ID is a new device's.
    await add_devices(db, ALICE, "A1")
    await devices.delete_devices(ALICE, ["A1"])
    assert (
        await store.enqueue(FROM_ALICE, "m.dummy", "t1", {BOB: {"*": {"n": 2}}}, now_ms=NOW)
        is not None
    )
    assert await contents(store, BOB, "B3") == [{"n": 1}, {"n": 2}]


@pytest_twisted.ensureDeferred
async def test_a_new_device_starts_empty_even_with_a_reused_id(db: Database) -> None:
    await add_devices(db, BOB, "B1")
    store = ToDeviceStore(db)
    await store.enqueue(FROM_ALICE, "m.dummy", "t1", {BOB: {"B1": {"n": 1}}}, now_ms=NOW)
    # What a send racing the device's deletion could leave behind on PostgreSQL.
    await db.execute(
        "leftover_inbox_row",
        "INSERT INTO device_inbox (user_id, device_id, stream_id, sender, message_type, content)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        BOB,
        "B9",
        2**40,
        ALICE,
        "m.dummy",
        "{}",
    )
    await add_devices(db, BOB, "B9")
    assert await contents(store, BOB, "B9") == []
    # Logging in again to an existing device keeps what waits for it.
    await DeviceStore(db).add_device_with_token(BOB, "B1", "another-token", created_ts=0)
    assert await contents(store, BOB, "B1") == [{"n": 1}]


@pytest_twisted.ensureDeferred
async def test_transaction_ids_are_forgotten_after_the_retention_window(db: Database) -> None:
    await add_devices(db, BOB, "B1")
    store = ToDeviceStore(db)
    day = 24 * 60 * 60 * 1000
    await store.enqueue(FROM_ALICE, "m.dummy", "old", {BOB: {"B1": {"n": 1}}}, now_ms=NOW)
    await store.enqueue(FROM_ALICE, "m.dummy", "new", {BOB: {"B1": {"n": 2}}}, now_ms=NOW + day)
    assert await store.prune_transactions(NOW + 1) == 1
    # The pruned ID is usable again; the kept one still deduplicates.
    assert await store.enqueue(FROM_ALICE, "m.dummy", "new", {BOB: {"B1": {}}}, now_ms=NOW) is None
    again = await store.enqueue(FROM_ALICE, "m.dummy", "old", {BOB: {"B1": {"n": 3}}}, now_ms=NOW)
    assert again is not None
    assert await contents(store, BOB, "B1") == [{"n": 1}, {"n": 2}, {"n": 3}]
