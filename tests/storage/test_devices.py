"""DeviceStore on both engines: devices and hashed access tokens."""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.devices import DeviceStore, LastSeen


@pytest_twisted.ensureDeferred
async def test_token_is_found_by_its_hash(db: Database) -> None:
    devices = DeviceStore(db)
    token_id = await devices.add_device_with_token(
        "@alice:localhost", "DEV1", "hash-1", created_ts=10, expires_ts=99
    )
    record = await devices.get_access_token("hash-1")
    assert record is not None
    assert (record.token_id, record.user_id, record.device_id, record.expires_ts) == (
        token_id,
        "@alice:localhost",
        "DEV1",
        99,
    )
    assert await devices.get_access_token("hash-2") is None


@pytest_twisted.ensureDeferred
async def test_each_token_gets_a_new_id_and_the_device_is_reused(db: Database) -> None:
    devices = DeviceStore(db)
    first = await devices.add_device_with_token("@a:localhost", "D", "h1", created_ts=1)
    second = await devices.add_device_with_token("@a:localhost", "D", "h2", created_ts=2)
    assert second > first
    rows = await db.execute("devices", "SELECT COUNT(*) FROM devices")
    assert rows == [(1,)]


@pytest_twisted.ensureDeferred
async def test_list_get_rename_devices(db: Database) -> None:
    devices = DeviceStore(db)
    await devices.add_device_with_token("@a:hs", "B", "h1", created_ts=1, display_name="Bee")
    await devices.add_device_with_token("@a:hs", "A", "h2", created_ts=1)
    await devices.add_device_with_token("@other:hs", "C", "h3", created_ts=1)
    assert [d.device_id for d in await devices.list_devices("@a:hs")] == ["A", "B"]
    device = await devices.get_device("@a:hs", "B")
    assert device is not None and device.display_name == "Bee" and device.last_seen_ts is None
    assert await devices.get_device("@a:hs", "C") is None
    assert await devices.set_display_name("@a:hs", "A", "Ay") is True
    assert await devices.set_display_name("@a:hs", "C", "no") is False
    renamed = await devices.get_device("@a:hs", "A")
    assert renamed is not None and renamed.display_name == "Ay"


@pytest_twisted.ensureDeferred
async def test_deleting_devices_deletes_their_tokens(db: Database) -> None:
    devices = DeviceStore(db)
    await devices.add_device_with_token("@a:hs", "A", "h1", created_ts=1, refresh_token_hash="r1")
    await devices.add_device_with_token("@a:hs", "B", "h2", created_ts=1)
    await devices.delete_devices("@a:hs", ["A", "UNKNOWN"])
    assert await devices.get_access_token("h1") is None
    assert await devices.get_access_token("h2") is not None
    assert await db.execute("count", "SELECT COUNT(*) FROM refresh_tokens") == [(0,)]
    assert [d.device_id for d in await devices.list_devices("@a:hs")] == ["B"]


@pytest_twisted.ensureDeferred
async def test_delete_all_devices_can_keep_one(db: Database) -> None:
    devices = DeviceStore(db)
    for device_id, token in (("A", "h1"), ("B", "h2"), ("C", "h3")):
        await devices.add_device_with_token("@a:hs", device_id, token, created_ts=1)
    await devices.add_device_with_token("@b:hs", "X", "hx", created_ts=1)
    deleted = await devices.delete_all_devices("@a:hs", except_device_id="B")
    assert sorted(deleted) == ["A", "C"]
    assert [d.device_id for d in await devices.list_devices("@a:hs")] == ["B"]
    assert await devices.get_access_token("h2") is not None
    assert sorted(await devices.delete_all_devices("@a:hs")) == ["B"]
    assert await devices.get_access_token("h2") is None
    assert await devices.get_access_token("hx") is not None  # other users untouched


@pytest_twisted.ensureDeferred
async def test_replacing_a_devices_tokens_and_deleting_single_tokens(db: Database) -> None:
    devices = DeviceStore(db)
    first = await devices.add_device_with_token("@a:hs", "A", "h1", created_ts=1)
    second = await devices.add_device_with_token("@a:hs", "A", "h2", created_ts=1)
    await devices.delete_other_access_tokens("@a:hs", "A", except_token_id=second)
    assert await devices.get_access_token("h1") is None
    await devices.add_device_with_token(
        "@a:hs", "A", "h3", created_ts=1, replace_existing_tokens=True
    )
    assert await devices.get_access_token("h2") is None
    record = await devices.get_access_token("h3")
    assert record is not None
    await devices.delete_access_token(record.token_id)
    assert await devices.get_access_token("h3") is None
    assert first != second


@pytest_twisted.ensureDeferred
async def test_last_seen_batch_update_and_token_use(db: Database) -> None:
    devices = DeviceStore(db)
    token_id = await devices.add_device_with_token("@a:hs", "A", "h1", created_ts=1)
    await devices.update_last_seen(
        [
            LastSeen("@a:hs", "A", "10.0.0.1", "UA/1", 1234),
            LastSeen("@a:hs", "GONE", "10.0.0.2", None, 1235),  # deleted meanwhile: no error
        ]
    )
    device = await devices.get_device("@a:hs", "A")
    assert device is not None
    assert (device.last_seen_ip, device.last_seen_ts, device.last_seen_user_agent) == (
        "10.0.0.1",
        1234,
        "UA/1",
    )
    record = await devices.get_access_token("h1")
    assert record is not None and record.used is False
    await devices.mark_access_token_used(token_id, None)
    record = await devices.get_access_token("h1")
    assert record is not None and record.used is True
