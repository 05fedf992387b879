"""What a server's database holds, read from outside while the server runs.

- the whole database's size: :func:`bench.client_api.databases.size_bytes` (SQLite:
  ``page_count * page_size`` from a read transaction, which sees the pages still in
  the WAL, i.e. the main file's size after a checkpoint; PostgreSQL:
  ``pg_database_size``);
- the full-text search index alone: Synapse's ``event_search`` (on SQLite an FTS4
  table, its shadow tables included), ours the tables created by its search
  migrations (``homeserver/storage/schema/0030*``, read at run time so the bench
  follows their names).  SQLite: the pages of each table and index from the
  ``dbstat`` virtual table; PostgreSQL: ``pg_total_relation_size`` (heap, indexes,
  TOAST);
- row counts of the tables whose names mention push or notifications (Synapse's
  ``event_push_actions``: one row per notified member per message).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psycopg2

from bench.client_api import databases
from bench.client_api.databases import Database

T = TypeVar("T")

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "homeserver" / "storage" / "schema"
_CREATE_TABLE = re.compile(
    r"CREATE\s+(?:VIRTUAL\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?[\"`]?(\w+)", re.IGNORECASE
)
_PUSH_TABLE = re.compile(r"push|notif", re.IGNORECASE)


def search_tables(server_key: str) -> list[str]:
    """The names of the tables holding the server's message search index."""
    if server_key == "synapse":
        return ["event_search"]
    names: dict[str, None] = {}
    for path in sorted(SCHEMA_DIR.glob("0030*")):
        for name in _CREATE_TABLE.findall(path.read_text()):
            names.setdefault(name, None)
    return list(names)


def _with_connection(database: Database, work: Callable[[Any, bool], T]) -> T:
    """Run ``work(cursor, is_sqlite)`` on a new connection of our own."""
    if database.engine == "sqlite3":
        conn = sqlite3.connect(database.args["database"], timeout=60)
        try:
            return work(conn.cursor(), True)
        finally:
            conn.close()
    args = {key: value for key, value in database.args.items() if not key.startswith("cp_")}
    pg = psycopg2.connect(**args, connect_timeout=10)
    try:
        pg.autocommit = True
        with pg.cursor() as cursor:
            return work(cursor, False)
    finally:
        pg.close()


def _tables(cursor: Any, sqlite: bool) -> list[str]:
    if sqlite:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
    return [str(row[0]) for row in cursor.fetchall()]


def tables_bytes(database: Database, names: Sequence[str]) -> int:
    """Bytes of the named tables with their indexes (and, for SQLite virtual tables,
    their ``<name>_*`` shadow tables)."""

    def work(cursor: Any, sqlite: bool) -> int:
        if not sqlite:
            existing = set(_tables(cursor, sqlite))
            total = 0
            for name in names:
                if name in existing:
                    cursor.execute("SELECT pg_total_relation_size(%s)", (name,))
                    total += int(cursor.fetchone()[0])
            return total
        cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")
        owner = {str(name): str(table) for name, table in cursor.fetchall()}
        cursor.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
        total = 0
        for btree, size in cursor.fetchall():
            table = owner.get(str(btree), str(btree))
            if any(table == name or table.startswith(f"{name}_") for name in names):
                total += int(size)
        return total

    return _with_connection(database, work)


def push_row_counts(database: Database) -> dict[str, int]:
    """Rows of every table whose name mentions push or notifications."""

    def work(cursor: Any, sqlite: bool) -> dict[str, int]:
        counts = {}
        for name in sorted(_tables(cursor, sqlite)):
            if _PUSH_TABLE.search(name) and not name.startswith("sqlite_"):
                cursor.execute(f'SELECT COUNT(*) FROM "{name}"')
                counts[name] = int(cursor.fetchone()[0])
        return counts

    return _with_connection(database, work)


def size_bytes(database: Database) -> int:
    return databases.size_bytes(database)
