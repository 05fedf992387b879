"""A fresh database for each server under test: a SQLite file, or a PostgreSQL database.

PostgreSQL is reached through ``HS_TEST_POSTGRES`` (a libpq connection string), by
default the ``hs_test`` role (with CREATEDB) that the test suite uses.  Databases are
created with UTF8 encoding and C collation, which Synapse insists on, and dropped
when the benchmark ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

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
