"""AccountDataStore on both engines: positions, read-modify-write, change ranges."""

from __future__ import annotations

from typing import Any

import pytest_twisted

from homeserver.storage.account_data import AccountDataRow, AccountDataStore
from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


@pytest_twisted.ensureDeferred
async def test_global_and_room_data_are_kept_apart(db: Database) -> None:
    store = AccountDataStore(db)
    assert await store.get("@a:hs", None, "x.t") is None
    await store.set("@a:hs", None, "x.t", {"scope": "global"})
    await store.set("@a:hs", "!r:hs", "x.t", {"scope": "room"})
    await store.set("@b:hs", None, "x.t", {"scope": "b"})
    assert await store.get("@a:hs", None, "x.t") == {"scope": "global"}
    assert await store.get("@a:hs", "!r:hs", "x.t") == {"scope": "room"}
    assert await store.get("@a:hs", "!other:hs", "x.t") is None
    assert await store.get("@b:hs", None, "x.t") == {"scope": "b"}


@pytest_twisted.ensureDeferred
async def test_every_change_gets_a_higher_position(db: Database) -> None:
    store = AccountDataStore(db)
    assert await store.get_max_stream_id() == 0
    first = await store.set("@a:hs", None, "x.t", {"n": 1})
    second = await store.set("@a:hs", None, "x.t", {"n": 2, "text": "é \u0000 ☃"})
    third = await store.set("@b:hs", "!r:hs", "x.t", {})
    assert first < second < third
    assert await store.get_max_stream_id() == third
    # The newest content replaces the old; NUL and non-ASCII survive.
    assert await store.get("@a:hs", None, "x.t") == {"n": 2, "text": "é \u0000 ☃"}


@pytest_twisted.ensureDeferred
async def test_changes_returns_only_the_users_rows_in_the_range(db: Database) -> None:
    store = AccountDataStore(db)
    p1 = await store.set("@a:hs", None, "one", {"v": 1})
    p2 = await store.set("@a:hs", "!r:hs", "two", {"v": 2})
    await store.set("@b:hs", None, "one", {"v": "b"})
    p4 = await store.set("@a:hs", None, "three", {"v": 3})
    assert await store.changes("@a:hs", 0, p4) == [
        AccountDataRow(None, "one", {"v": 1}, p1),
        AccountDataRow("!r:hs", "two", {"v": 2}, p2),
        AccountDataRow(None, "three", {"v": 3}, p4),
    ]
    assert [row.data_type for row in await store.changes("@a:hs", p1, p2)] == ["two"]
    assert await store.changes("@a:hs", p4, p4 + 10) == []
    # A row changed again moves to its new position.
    p5 = await store.set("@a:hs", None, "one", {"v": 5})
    assert [(row.data_type, row.stream_id) for row in await store.changes("@a:hs", p2, p5)] == [
        ("three", p4),
        ("one", p5),
    ]


@pytest_twisted.ensureDeferred
async def test_update_reads_and_writes_in_one_transaction(db: Database) -> None:
    store = AccountDataStore(db)
    seen: list[dict[str, Any] | None] = []

    def add_one(current: dict[str, Any] | None) -> dict[str, Any]:
        seen.append(current)
        return {"n": (current or {"n": 0})["n"] + 1}

    first = await store.update("@a:hs", "!r:hs", "m.tag", add_one)
    second = await store.update("@a:hs", "!r:hs", "m.tag", add_one)
    assert first is not None and second is not None and first < second
    assert seen == [None, {"n": 1}]
    assert await store.get("@a:hs", "!r:hs", "m.tag") == {"n": 2}
    # No change: no new position.
    assert await store.update("@a:hs", "!r:hs", "m.tag", lambda current: None) is None
    assert await store.get_max_stream_id() == second


_CHANGES_QUERY = (
    "SELECT room_id, data_type, content, stream_id FROM account_data"
    " WHERE user_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id"
)


def _plan_txn(txn: Transaction) -> str:
    if txn.engine.dialect == "sqlite":
        txn.execute("EXPLAIN QUERY PLAN " + _CHANGES_QUERY, ("@a:hs", 0, 10))
        return " ".join(str(row[-1]) for row in txn.fetchall())
    # An empty table is cheapest to scan; ask whether the index can serve the query.
    txn.execute("SET LOCAL enable_seqscan = off")
    txn.execute("EXPLAIN " + _CHANGES_QUERY, ("@a:hs", 0, 10))
    return " ".join(str(row[0]) for row in txn.fetchall())


@pytest_twisted.ensureDeferred
async def test_changes_for_a_user_use_the_index(db: Database) -> None:
    # The sync hot path: one user's changes after a position, an index range read.
    plan = await db.run_interaction("plan", _plan_txn)
    assert "account_data_by_user_stream" in plan, plan
