"""RegistrationTokenStore on both engines."""

from __future__ import annotations

import pytest
import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.registration_tokens import (
    RegistrationToken,
    RegistrationTokenExistsError,
    RegistrationTokenStore,
)


@pytest_twisted.ensureDeferred
async def test_create_get_list_update_delete(db: Database) -> None:
    store = RegistrationTokenStore(db)
    created = await store.create("abc", uses_allowed=2, expiry_time=None)
    assert created == RegistrationToken("abc", 2, 0, 0, None)
    with pytest.raises(RegistrationTokenExistsError):
        await store.create("abc", uses_allowed=None, expiry_time=None)
    await store.create("xyz", uses_allowed=None, expiry_time=5000)
    assert [t.token for t in await store.list_tokens()] == ["abc", "xyz"]
    updated = await store.update("abc", expiry_time=9000)
    assert updated == RegistrationToken("abc", 2, 0, 0, 9000)
    assert await store.update("abc", uses_allowed=None) == RegistrationToken(
        "abc", None, 0, 0, 9000
    )
    assert await store.update("missing", uses_allowed=1) is None
    assert await store.delete("abc") is True
    assert await store.delete("abc") is False
    assert await store.get("abc") is None


@pytest_twisted.ensureDeferred
async def test_uses_are_counted_pending_then_completed(db: Database) -> None:
    store = RegistrationTokenStore(db)
    await store.create("one", uses_allowed=1, expiry_time=None)
    assert await store.take_pending_use("one", now_ms=0) is True
    # The only use is pending: nobody else may take it meanwhile.
    assert await store.take_pending_use("one", now_ms=0) is False
    await store.release_pending_use("one")
    assert await store.take_pending_use("one", now_ms=0) is True
    await store.complete_use("one")
    assert await store.get("one") == RegistrationToken("one", 1, 0, 1, None)
    assert await store.take_pending_use("one", now_ms=0) is False


@pytest_twisted.ensureDeferred
async def test_expired_and_unknown_tokens_are_not_usable(db: Database) -> None:
    store = RegistrationTokenStore(db)
    await store.create("old", uses_allowed=None, expiry_time=100)
    assert await store.take_pending_use("old", now_ms=99) is True
    assert await store.take_pending_use("old", now_ms=100) is False
    assert await store.take_pending_use("nope", now_ms=0) is False
