"""The Database API behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg2.errors
import pytest
import pytest_twisted
from twisted.internet import defer, threads

from homeserver.errors import TextWithNulError
from homeserver.reactor import installed_reactor
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


# --- reads: read-only transactions that never wait for the writer -------------------

#: Bounds every wait on another thread, so a broken implementation fails, not hangs.
_WAIT_SECONDS = 30


def _insert_one(txn: Transaction) -> None:
    txn.execute("INSERT INTO things (id, name) VALUES (?, ?)", (1, "one"))


@pytest_twisted.ensureDeferred
async def test_read_runs_while_a_write_transaction_is_open(db: Database) -> None:
    await db.run_interaction("make", _make_table)
    written, release = threading.Event(), threading.Event()

    def write_and_hold(txn: Transaction) -> None:
        _insert_one(txn)
        written.set()
        if not release.wait(_WAIT_SECONDS):
            raise TimeoutError("the test never released the write")

    write = defer.ensureDeferred(db.run_interaction("write", write_and_hold))
    try:
        assert await threads.deferToThread(written.wait, _WAIT_SECONDS)
        # The write transaction is open (holding SQLite's write lock) and stays so
        # until released: a read that queued behind it would not return before it.
        assert await db.execute_read("read", "SELECT id FROM things") == []
        assert not write.called
    finally:
        release.set()
    await write
    # Several at once, spread over the read connections: each must see the commit.
    reads = [db.execute_read("read", "SELECT id FROM things") for _ in range(6)]
    assert await defer.gatherResults([defer.ensureDeferred(read) for read in reads]) == [[(1,)]] * 6


@pytest_twisted.ensureDeferred
async def test_read_only_transaction_refuses_writes(db: Database) -> None:
    await db.run_interaction("make", _make_table)
    with pytest.raises((sqlite3.OperationalError, psycopg2.errors.ReadOnlySqlTransaction)):
        await db.run_read("insert", _insert_one)
    assert await db.execute("count", "SELECT COUNT(*) FROM things") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_a_connection_writes_again_after_serving_a_read(
    database_config: dict[str, Any],
) -> None:
    # One connection in the pool: on PostgreSQL reads and writes share it, and the
    # read-only mark of a read must not stick to the next write.
    args = {k: v for k, v in database_config["args"].items() if k not in ("cp_min", "cp_max")}
    database = Database.connect(
        database_config["name"], args, reactor=installed_reactor(), cp_min=1, cp_max=1
    )
    try:
        await database.run_interaction("make", _make_table)
        assert await database.execute_read("read", "SELECT COUNT(*) FROM things") == [(0,)]
        await database.run_interaction("insert", _insert_one)
        assert await database.execute_read("read", "SELECT id FROM things") == [(1,)]
    finally:
        database.close()


@pytest_twisted.ensureDeferred
async def test_a_read_leaves_no_sqlite_snapshot_open(tmp_path: Path) -> None:
    database = Database.connect(
        "sqlite3", {"database": str(tmp_path / "x.db")}, reactor=installed_reactor()
    )
    try:
        await database.run_interaction("make", _make_table)
        await database.run_interaction(
            "fill",
            lambda txn: txn.executemany(
                "INSERT INTO things (id, name) VALUES (?, ?)", [(i, "x") for i in range(10)]
            ),
        )

        # Kept alive, as a closure or a traceback may keep them: garbage collection
        # must not be what ends the snapshot.
        kept: list[Transaction] = []

        def read_one_row(txn: Transaction) -> tuple[Any, ...] | None:
            # Rows left unread: the statement stays open unless the layer closes it.
            kept.append(txn)
            txn.execute("SELECT id FROM things ORDER BY id")
            return txn.fetchone()

        # Several at once, spread over the read connections; then a write after them.
        partial = [database.run_read("partial", read_one_row) for _ in range(6)]
        await defer.gatherResults([defer.ensureDeferred(read) for read in partial])
        await database.run_interaction(
            "write", lambda txn: txn.execute("INSERT INTO things (id, name) VALUES (99, 'y')")
        )

        # A reader still holding a snapshot from before the write would keep the
        # checkpoint from copying the write's frames back into the database file.
        outside = sqlite3.connect(tmp_path / "x.db")
        try:
            busy, logged, copied = outside.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            outside.close()
        assert (busy, copied) == (0, logged)
        rows = [database.execute_read("read", "SELECT COUNT(*) FROM things") for _ in range(6)]
        assert (
            await defer.gatherResults([defer.ensureDeferred(read) for read in rows])
            == [[(11,)]] * 6
        )
    finally:
        database.close()


@pytest_twisted.ensureDeferred
async def test_in_memory_sqlite_reads_share_the_one_connection() -> None:
    # A second connection to ":memory:" would be a different, empty database.
    database = Database.connect("sqlite3", {"database": ":memory:"}, reactor=installed_reactor())
    try:
        await database.run_interaction("make", _make_table)
        await database.run_interaction("insert", _insert_one)
        assert await database.execute_read("read", "SELECT id FROM things") == [(1,)]
    finally:
        database.close()


def _sync_setting(txn: Transaction) -> str:
    if txn.engine.dialect == "sqlite":
        txn.execute("PRAGMA synchronous")
    else:
        txn.execute("SHOW synchronous_commit")
    row = txn.fetchone()
    assert row is not None
    return str(row[0])


@pytest_twisted.ensureDeferred
async def test_an_unsynced_write_commits_and_leaves_later_writes_synced(db: Database) -> None:
    """Derived data may skip the fsync; the connection's next write must not."""
    await db.run_interaction("make", _make_table)
    synced = await db.run_interaction("setting", _sync_setting)

    def insert(txn: Transaction) -> str:
        txn.execute("INSERT INTO things (id, name) VALUES (?, ?)", (7, "derived"))
        return _sync_setting(txn)

    during = await db.run_unsynced("insert", insert)
    assert during != synced  # NORMAL (1) / off while it ran, FULL (2) / on otherwise
    assert await db.execute("read", "SELECT name FROM things WHERE id = 7") == [("derived",)]
    assert await db.run_interaction("setting", _sync_setting) == synced
