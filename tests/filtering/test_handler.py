"""FilterHandler on both engines: create, get, and resolving /sync's ``filter``."""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from homeserver.errors import MatrixError
from homeserver.filtering.handler import FilterHandler
from homeserver.filtering.model import DEFAULT_FILTER
from homeserver.storage.database import Database
from homeserver.storage.filters import FilterStore

FILTER = {"room": {"timeline": {"limit": 7, "types": ["m.room.message"]}}}


@pytest_twisted.ensureDeferred
async def test_created_filters_resolve_and_read_back(db: Database) -> None:
    handler = FilterHandler(FilterStore(db))
    filter_id = await handler.create("@a:hs", FILTER)
    assert not filter_id.startswith("{")
    assert await handler.get("@a:hs", filter_id) == FILTER
    assert (await handler.resolve("@a:hs", filter_id)).room.timeline.limit == 7
    # A fresh handler (nothing cached) reads it from the database.
    fresh = FilterHandler(FilterStore(db))
    assert (await fresh.resolve("@a:hs", filter_id)).room.timeline.limit == 7
    # Uploading the same filter again (keys in another order) gives the same ID.
    same = {"room": {"timeline": {"types": ["m.room.message"], "limit": 7}}}
    assert await handler.create("@a:hs", same) == filter_id


@pytest_twisted.ensureDeferred
async def test_unknown_and_other_users_filters(db: Database) -> None:
    handler = FilterHandler(FilterStore(db))
    filter_id = await handler.create("@a:hs", FILTER)
    for user_id, candidate in [
        ("@b:hs", filter_id),
        ("@a:hs", "12345678"),
        ("@a:hs", "abc"),
        ("@a:hs", "9" * 30),
        ("@a:hs", "１"),
    ]:
        with pytest.raises(MatrixError) as got:
            await handler.get(user_id, candidate)
        assert (got.value.status, got.value.errcode) == (404, "M_NOT_FOUND")
        with pytest.raises(MatrixError) as got:
            await handler.resolve(user_id, candidate)
        assert (got.value.status, got.value.errcode) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_invalid_filters_are_not_stored(db: Database) -> None:
    handler = FilterHandler(FilterStore(db))
    with pytest.raises(MatrixError) as got:
        await handler.create("@a:hs", {"room": {"timeline": {"limit": "ten"}}})
    assert (got.value.status, got.value.errcode) == (400, "M_BAD_JSON")
    assert await db.execute("count", "SELECT COUNT(*) FROM user_filters") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_resolving_inline_and_absent_filters(db: Database) -> None:
    handler = FilterHandler(FilterStore(db))
    assert await handler.resolve("@a:hs", None) is DEFAULT_FILTER
    inline = await handler.resolve("@a:hs", json.dumps(FILTER))
    assert inline.room.timeline.limit == 7
    assert await handler.resolve("@a:hs", json.dumps(FILTER)) is inline  # cached
    for text, errcode in [
        ("{not json", "M_NOT_JSON"),
        ('{"limit": NaN}', "M_NOT_JSON"),
        ("{" * 100_000, "M_NOT_JSON"),
        ('{"room": {"timeline": {"limit": -1}}}', "M_BAD_JSON"),
    ]:
        with pytest.raises(MatrixError) as got:
            await handler.resolve("@a:hs", text)
        assert (got.value.status, got.value.errcode) == (400, errcode), text
