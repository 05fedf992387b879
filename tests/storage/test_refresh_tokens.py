"""RefreshTokenStore on both engines: issue, rotate, revoke."""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.devices import DeviceStore
from homeserver.storage.refresh_tokens import RefreshTokenStore


async def _login(db: Database) -> None:
    await DeviceStore(db).add_device_with_token(
        "@a:hs", "D", "at0", created_ts=1, expires_ts=100, refresh_token_hash="rt0"
    )


@pytest_twisted.ensureDeferred
async def test_refresh_token_is_bound_to_the_device_and_its_access_token(db: Database) -> None:
    await _login(db)
    store = RefreshTokenStore(db)
    record = await store.get_refresh_token("rt0")
    assert record is not None
    assert (record.user_id, record.device_id, record.next_token_id) == ("@a:hs", "D", None)
    access = await DeviceStore(db).get_access_token("at0")
    assert access is not None and access.refresh_token_id == record.token_id
    assert await store.get_refresh_token("nope") is None


@pytest_twisted.ensureDeferred
async def test_rotation_links_the_successor_and_replaces_the_access_token(db: Database) -> None:
    await _login(db)
    store, devices = RefreshTokenStore(db), DeviceStore(db)
    old = await store.get_refresh_token("rt0")
    assert old is not None
    assert await store.rotate(
        old, refresh_token_hash="rt1", access_token_hash="at1", created_ts=2, expires_ts=200
    )
    assert await devices.get_access_token("at0") is None
    new = await store.get_refresh_token("rt1")
    assert new is not None
    relinked = await store.get_refresh_token("rt0")
    assert relinked is not None and relinked.next_token_id == new.token_id
    new_access = await devices.get_access_token("at1")
    assert new_access is not None
    assert (new_access.device_id, new_access.expires_ts, new_access.refresh_token_id) == (
        "D",
        200,
        new.token_id,
    )
    # Rotating the old token again drops the successor nobody received.
    assert await store.rotate(
        old, refresh_token_hash="rt2", access_token_hash="at2", created_ts=3, expires_ts=300
    )
    assert await store.get_refresh_token("rt1") is None
    assert await devices.get_access_token("at1") is None
    # First use of the newest access token revokes the old refresh token.
    newest = await devices.get_access_token("at2")
    assert newest is not None
    await devices.mark_access_token_used(newest.token_id, newest.refresh_token_id)
    assert await store.get_refresh_token("rt0") is None
    assert (
        await store.rotate(
            old, refresh_token_hash="rt3", access_token_hash="at3", created_ts=4, expires_ts=400
        )
        is False
    )


@pytest_twisted.ensureDeferred
async def test_revoke_predecessors(db: Database) -> None:
    await _login(db)
    store = RefreshTokenStore(db)
    old = await store.get_refresh_token("rt0")
    assert old is not None
    await store.rotate(
        old, refresh_token_hash="rt1", access_token_hash="at1", created_ts=2, expires_ts=None
    )
    new = await store.get_refresh_token("rt1")
    assert new is not None
    await store.revoke_predecessors(new.token_id)
    assert await store.get_refresh_token("rt0") is None
    assert await store.get_refresh_token("rt1") is not None
