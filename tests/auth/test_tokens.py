"""AccessTokenHandler: validation, the in-memory cache and its invalidation."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import task

from homeserver.auth.tokens import AccessTokenHandler
from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.storage.database import Database
from homeserver.storage.devices import DeviceStore
from homeserver.storage.users import UserStore


async def _handler(db: Database) -> tuple[AccessTokenHandler, DeviceStore, task.Clock]:
    reactor = task.Clock()
    reactor.advance(1000)
    users, devices = UserStore(db), DeviceStore(db)
    await users.create_user("@a:hs", password_hash=None, created_ts=1)
    return (
        AccessTokenHandler(Clock(reactor), users, devices, refreshable_lifetime_ms=60_000),
        devices,
        reactor,
    )


@pytest_twisted.ensureDeferred
async def test_cached_token_stays_valid_until_invalidated(db: Database) -> None:
    tokens, devices, _ = await _handler(db)
    session = await tokens.create_session("@a:hs", "D")
    requester = await tokens.requester_for_token(session.access_token)
    assert (requester.user_id, requester.device_id) == ("@a:hs", "D")
    await devices.delete_access_token(requester.access_token_id)
    # Without invalidation the cache would still answer (one process, by design) ...
    assert (await tokens.requester_for_token(session.access_token)).user_id == "@a:hs"
    tokens.invalidate_user("@a:hs")
    # ... after it, the database is asked again and the token is gone.
    with pytest.raises(MatrixError) as caught:
        await tokens.requester_for_token(session.access_token)
    assert caught.value.errcode == "M_UNKNOWN_TOKEN"


@pytest_twisted.ensureDeferred
async def test_deleting_a_device_drops_its_cached_tokens_before_other_listeners_run(
    db: Database,
) -> None:
    tokens, devices, _ = await _handler(db)
    session = await tokens.create_session("@a:hs", "D")
    await tokens.requester_for_token(session.access_token)
    seen_by_listener: list[str] = []

    async def listener(user_id: str) -> None:
        # What a WebSocket stream woken by the change would do: check the token.
        try:
            await tokens.requester_for_token(session.access_token)
        except MatrixError as refused:
            seen_by_listener.append(refused.errcode)

    devices.on_devices_changed.append(listener)
    await devices.delete_devices("@a:hs", ["D"])
    assert seen_by_listener == ["M_UNKNOWN_TOKEN"]


@pytest_twisted.ensureDeferred
async def test_expiry_is_checked_even_for_cached_tokens(db: Database) -> None:
    tokens, _, reactor = await _handler(db)
    session = await tokens.create_session("@a:hs", "D", refreshable=True)
    assert session.expires_in_ms == 60_000 and session.refresh_token
    await tokens.requester_for_token(session.access_token)
    reactor.advance(61)
    with pytest.raises(MatrixError) as caught:
        await tokens.requester_for_token(session.access_token)
    assert caught.value.to_json()["soft_logout"] is True
