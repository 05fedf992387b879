"""The Database API behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import pytest_twisted

from homeserver.errors import TextWithNulError
from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


def _make_table(txn: Transaction) -> None:
    txn.execute("CREATE TABLE IF NOT EXISTS things (id BIGINT PRIMARY KEY, name TEXT NOT NULL)")


@pytest_twisted.ensureDeferred
async def test_interaction_commits_when_function_returns(db: Database) -> None:
    await db.run_interaction("make", _make_table)

    def insert(txn: Transaction) -> None:
        txn.execute("INSERT INTO things (id, name) VALUES (?, ?)", (1, "one"))

    await db.run_interaction("insert", insert)
    assert await db.execute("read", "SELECT id, name FROM things") == [(1, "one")]


@pytest_twisted.ensureDeferred
async def test_interaction_rolls_back_when_function_raises(db: Database) -> None:
    await db.run_interaction("make", _make_table)

    def insert_then_fail(txn: Transaction) -> None:
        txn.execute("INSERT INTO things (id, name) VALUES (?, ?)", (1, "one"))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.run_interaction("insert", insert_then_fail)
    assert await db.execute("read", "SELECT id FROM things") == []


@pytest_twisted.ensureDeferred
async def test_queries_run_off_the_reactor_thread(db: Database) -> None:
    reactor_thread = threading.current_thread()
    seen = await db.run_interaction("thread", lambda txn: threading.current_thread())
    assert seen is not reactor_thread


@pytest_twisted.ensureDeferred
async def test_after_commit_callbacks_run_only_after_a_commit(db: Database) -> None:
    calls: list[str] = []

    def ok(txn: Transaction) -> None:
        txn.call_after_commit(lambda: calls.append("ok"))

    def failing(txn: Transaction) -> None:
        txn.call_after_commit(lambda: calls.append("failed"))
        raise ValueError

    await db.run_interaction("ok", ok)
    with pytest.raises(ValueError):
        await db.run_interaction("failing", failing)
    assert calls == ["ok"]


@pytest_twisted.ensureDeferred
async def test_sequence_ids_are_unique_and_increasing(db: Database) -> None:
    await db.run_interaction("create", lambda txn: txn.engine.create_sequence(txn, "test_ids"))
    ids = [
        await db.run_interaction("next", lambda txn: txn.engine.next_id(txn, "test_ids"))
        for _ in range(5)
    ]
    assert ids == sorted(set(ids))
    assert len(ids) == 5


@pytest_twisted.ensureDeferred
async def test_non_ascii_text_round_trips(db: Database) -> None:
    await db.run_interaction("make", _make_table)
    name = "Zoë 🐱 日本語"

    def insert(txn: Transaction) -> None:
        txn.execute("INSERT INTO things (id, name) VALUES (?, ?)", (7, name))

    await db.run_interaction("insert", insert)
    assert await db.execute("read", "SELECT name FROM things WHERE id = ?", 7) == [(name,)]


@pytest_twisted.ensureDeferred
async def test_text_with_nul_is_refused_alike_on_every_engine(db: Database) -> None:
    await db.run_interaction("make", _make_table)

    def insert_one(txn: Transaction) -> None:
        txn.execute("INSERT INTO things (id, name) VALUES (?, ?)", (1, "a\x00b"))

    def insert_many(txn: Transaction) -> None:
        txn.executemany("INSERT INTO things (id, name) VALUES (?, ?)", [(2, "ok"), (3, "\x00")])

    for insert in (insert_one, insert_many):
        with pytest.raises(TextWithNulError):
            await db.run_interaction("insert", insert)
    assert await db.execute("read", "SELECT COUNT(*) FROM things") == [(0,)]
    # Looking a NUL value up is refused the same way, not an engine error.
    with pytest.raises(TextWithNulError):
        await db.execute("read", "SELECT id FROM things WHERE name = ?", "\x00")


@pytest_twisted.ensureDeferred
async def test_upsert_syntax_is_portable(db: Database) -> None:
    await db.run_interaction("make", _make_table)

    def upsert(txn: Transaction, name: str) -> None:
        txn.execute(
            "INSERT INTO things (id, name) VALUES (?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            (1, name),
        )

    await db.run_interaction("upsert", upsert, "first")
    await db.run_interaction("upsert", upsert, "second")
    assert await db.execute("read", "SELECT name FROM things") == [("second",)]
