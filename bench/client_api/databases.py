"""A fresh database for each server under test: a SQLite file, or a PostgreSQL database.

PostgreSQL is reached through ``HS_TEST_POSTGRES`` (a libpq connection string), by
default the ``hs_test`` role (with CREATEDB) that the test suite uses.  Databases are
created with UTF8 encoding and C collation, which Synapse insists on, and dropped
when the benchmark ends.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import attrs
import psycopg2

from tests.support.postgres import PostgresUnavailable, create_database, drop_database


@attrs.frozen
class Database:
    """What goes under ``database:`` in both servers' configs (same shape in both)."""

    engine: str  # "sqlite3" or "psycopg2"
    args: dict[str, Any]

    def config(self) -> dict[str, Any]:
        return {"name": self.engine, "args": dict(self.args)}

    @property
    def label(self) -> str:
        return "SQLite" if self.engine == "sqlite3" else "PostgreSQL"


def sqlite_database(path: Path) -> Database:
    return Database(engine="sqlite3", args={"database": str(path)})


def create_postgres_database(prefix: str) -> Database:
    """A new empty database named ``<prefix>_<random>``; drop it with :func:`drop`."""
    try:
        args = create_database(prefix)
    except PostgresUnavailable as unavailable:
        raise SystemExit(str(unavailable)) from None
    # Both servers' defaults; stated so the two pools are the same size.
    return Database(engine="psycopg2", args={**args, "cp_min": 5, "cp_max": 10})


def drop(database: Database) -> None:
    """Drop a database made by :func:`create_postgres_database`; SQLite files go with
    their temporary folder."""
    if database.engine == "psycopg2":
        drop_database(database.args["database"])


def size_bytes(database: Database) -> int:
    """The database's current size in bytes, read while its server keeps running.

    SQLite: ``page_count * page_size`` from a separate connection's read transaction,
    which sees every committed page, those still only in the WAL included; it is the
    size the main file has once the WAL is checkpointed into it (without the WAL file,
    which a checkpoint empties; free pages are counted, as the file keeps them).
    PostgreSQL: ``pg_database_size(current_database())`` (heap, indexes and TOAST of
    every table; dead row versions count until vacuumed, as on disk).
    """
    if database.engine == "sqlite3":
        conn = sqlite3.connect(database.args["database"], timeout=30)
        try:
            page_count = conn.execute("PRAGMA page_count").fetchone()[0]
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        finally:
            conn.close()
        return int(page_count) * int(page_size)
    args = {key: value for key, value in database.args.items() if not key.startswith("cp_")}
    pg = psycopg2.connect(**args, connect_timeout=10)
    try:
        with pg.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            row = cursor.fetchone()
    finally:
        pg.close()
    assert row is not None
    return int(row[0])
