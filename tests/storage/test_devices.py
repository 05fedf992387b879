"""DeviceStore on both engines: devices and hashed access tokens."""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.devices import DeviceStore


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
