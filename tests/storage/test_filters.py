"""FilterStore on both engines."""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.filters import FilterStore


@pytest_twisted.ensureDeferred
async def test_filters_are_stored_per_user(db: Database) -> None:
    store = FilterStore(db)
    first = await store.add_filter("@a:hs", "h1", '{"room":{}}')
    second = await store.add_filter("@a:hs", "h2", '{"presence":{}}')
    assert first != second
    assert await store.get_filter("@a:hs", first) == '{"room":{}}'
    assert await store.get_filter("@a:hs", second) == '{"presence":{}}'
    # Another user's filter ID is unknown to this user.
    assert await store.get_filter("@b:hs", first) is None
    assert await store.get_filter("@a:hs", 999_999) is None


@pytest_twisted.ensureDeferred
async def test_an_identical_filter_keeps_its_id(db: Database) -> None:
    store = FilterStore(db)
    first = await store.add_filter("@a:hs", "same", "{}")
    assert await store.add_filter("@a:hs", "same", "{}") == first
    # The same filter for another user is that user's own row.
    other = await store.add_filter("@b:hs", "same", "{}")
    assert other != first
    assert await db.execute("count", "SELECT COUNT(*) FROM user_filters") == [(2,)]
