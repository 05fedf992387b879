"""A fresh database for each server under test: a SQLite file, or a PostgreSQL database.

PostgreSQL is reached through ``HS_TEST_POSTGRES`` (a libpq connection string), by
default the ``hs_test`` role (with CREATEDB) that the test suite uses.  Databases are
created with UTF8 encoding and C collation, which Synapse insists on, and dropped
when the benchmark ends.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import attrs
import psycopg2

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=hs_test password=hs_test dbname=postgres"


def maintenance_dsn() -> str:
    return os.environ.get("HS_TEST_POSTGRES", DEFAULT_DSN)


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


def _connect() -> Any:
    try:
        conn = psycopg2.connect(maintenance_dsn(), connect_timeout=5)
    except psycopg2.OperationalError as error:
        raise SystemExit(
            f"PostgreSQL is not reachable ({str(error).strip()}); start it with "
            "scripts/services.sh or set HS_TEST_POSTGRES"
        ) from None
    conn.autocommit = True
    return conn


def create_postgres_database(prefix: str) -> Database:
    """A new empty database named ``<prefix>_<random>``; drop it with :func:`drop`."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = _connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                " TEMPLATE template0"
            )
        params = conn.get_dsn_parameters()
    finally:
        conn.close()
    args: dict[str, Any] = {
        "host": params.get("host", "127.0.0.1"),
        "port": int(params.get("port", 5432)),
        "user": params.get("user", "hs_test"),
        "database": name,
        # Both servers' defaults; stated so the two pools are the same size.
        "cp_min": 5,
        "cp_max": 10,
    }
    password = psycopg2.extensions.parse_dsn(maintenance_dsn()).get("password")
    if password:
        args["password"] = password
    return Database(engine="psycopg2", args=args)


def drop(database: Database) -> None:
    """Drop a database made by :func:`create_postgres_database`; SQLite files go with
    their temporary folder."""
    if database.engine != "psycopg2":
        return
    conn = _connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database.args['database']} WITH (FORCE)")
    finally:
        conn.close()
