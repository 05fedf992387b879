"""Searching everything a test server's database holds for a plaintext: the check that
end-to-end encrypted messages never reach the server in the clear.

Used by the interop tests (tests/interop/) after real clients exchanged encrypted
messages; each such test also searches for a message of an unencrypted room, so the
search is shown able to fail.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from homeserver.storage.event_json import CorruptEventJsonError, decompress_event_json


def plaintext_forms(message: dict[str, str]) -> list[bytes]:
    """Every way a message body could be written down: UTF-8, JSON-escaped (ASCII or
    not), and its random token alone (which no other data can contain by chance)."""
    body = message["body"]
    return [
        body.encode("utf-8"),
        json.dumps(body)[1:-1].encode("ascii"),
        json.dumps(body, ensure_ascii=False)[1:-1].encode("utf-8"),
        message["token"].encode("ascii"),
    ]


def database_contents(database_config: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) for everything the server's database holds.

    SQLite: the database file and its -wal and -shm files byte for byte, then every
    value of every table.  PostgreSQL: every row of every table as text (as a dump
    shows it), then every value.  Values are searched decoded too: event JSON is
    stored deflated (homeserver/storage/event_json.py), which no byte search sees
    through."""
    args = dict(database_config["args"])
    if database_config["name"] == "sqlite3":
        path = Path(args["database"])
        for suffix in ("", "-wal", "-shm"):
            file = path.with_name(path.name + suffix)
            if file.exists():
                yield file.name, file.read_bytes()
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            ]
            for table in tables:
                quoted = '"' + table.replace('"', '""') + '"'
                for row in connection.execute(f"SELECT * FROM {quoted}"):
                    yield from row_values(table, row)
        finally:
            connection.close()
        return
    args.pop("cp_min", None)
    args.pop("cp_max", None)
    connection = psycopg2.connect(**args)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT schemaname, tablename FROM pg_tables"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
            tables = cursor.fetchall()
            for schema, table in tables:
                name = sql.Identifier(schema, table)
                cursor.execute(sql.SQL("SELECT t::text FROM {} t").format(name))
                for (text,) in cursor.fetchall():
                    yield f"{table} (row text)", text.encode("utf-8")
                cursor.execute(sql.SQL("SELECT * FROM {}").format(name))
                for row in cursor.fetchall():
                    yield from row_values(table, row)
    finally:
        connection.close()


def row_values(table: str, row: tuple[Any, ...]) -> Iterator[tuple[str, bytes]]:
    for value in row:
        if isinstance(value, memoryview):
            value = bytes(value)
        if isinstance(value, bytes):
            yield table, value
            try:
                yield f"{table} (decompressed event)", decompress_event_json(value)
            except (CorruptEventJsonError, zlib.error):
                pass
        elif isinstance(value, str):
            yield table, value.encode("utf-8")
        elif isinstance(value, (dict, list)):
            # psycopg2 parses json/jsonb columns.
            yield table, json.dumps(value, ensure_ascii=False).encode("utf-8")


def locations_of(text: str, haystacks: list[tuple[str, bytes]]) -> list[str]:
    """Where ``text`` (UTF-8 or JSON-escaped) appears in ``haystacks``."""
    needles = plaintext_forms({"body": text, "token": text})
    return sorted({where for where, data in haystacks for n in needles if n in data})
