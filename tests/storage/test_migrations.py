"""Schema migrations: applied once, in order, and a newer database is refused."""

from __future__ import annotations

import pytest
import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.migrations import (
    DatabaseTooNewError,
    _split_statements,
    available_migrations,
    prepare_database,
)
from homeserver.storage.transaction import Transaction


def test_migration_numbers_are_contiguous_for_both_engines() -> None:
    for dialect in ("sqlite", "postgres"):
        versions = [m.version for m in available_migrations(dialect)]
        assert versions == list(range(1, len(versions) + 1))


@pytest_twisted.ensureDeferred
async def test_fresh_database_is_brought_to_the_latest_version(db: Database) -> None:
    latest = available_migrations(db.engine.dialect)[-1].version
    rows = await db.execute("versions", "SELECT MAX(version) FROM schema_migrations")
    assert rows == [(latest,)]
    # The tables the migrations create exist.
    assert await db.execute("users", "SELECT COUNT(*) FROM users") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_preparing_again_applies_nothing_and_keeps_data(db: Database) -> None:
    def insert(txn: Transaction) -> None:
        txn.execute("INSERT INTO users (user_id, created_ts) VALUES (?, ?)", ("@a:localhost", 1))

    await db.run_interaction("insert", insert)
    before = await db.execute("count", "SELECT COUNT(*) FROM schema_migrations")
    await prepare_database(db)
    assert await db.execute("count", "SELECT COUNT(*) FROM schema_migrations") == before
    assert await db.execute("users", "SELECT user_id FROM users") == [("@a:localhost",)]


@pytest_twisted.ensureDeferred
async def test_database_written_by_a_newer_version_is_refused(db: Database) -> None:
    def from_the_future(txn: Transaction) -> None:
        txn.execute(
            "INSERT INTO schema_migrations (version, name, applied_ts) VALUES (?, ?, ?)",
            (9999, "from_the_future", 0),
        )

    await db.run_interaction("future", from_the_future)
    with pytest.raises(DatabaseTooNewError, match="newer version"):
        await prepare_database(db)


def test_statements_split_on_line_ending_semicolons_only() -> None:
    sql = "-- a comment; not a statement\nCREATE TABLE a (x TEXT);\n\nCREATE INDEX i ON a (x);\n"
    assert _split_statements(sql) == ["CREATE TABLE a (x TEXT)", "CREATE INDEX i ON a (x)"]
