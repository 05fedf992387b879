"""Throwaway PostgreSQL databases, for tests (one per test) and benchmarks.

The server is found through ``HS_TEST_POSTGRES`` (a libpq connection string; by
default the role ``hs_test`` on 127.0.0.1 that ``scripts/test`` creates).  A test
that needs PostgreSQL fails — it is never skipped — when the server is unreachable:
CI must prove both engines.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import pytest

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=hs_test password=hs_test dbname=postgres"


class PostgresUnavailable(Exception):
    """The maintenance connection failed; the message says why and what to do."""


def maintenance_dsn() -> str:
    return os.environ.get("HS_TEST_POSTGRES", DEFAULT_DSN)


def _connect() -> Any:
    try:
        conn = psycopg2.connect(maintenance_dsn(), connect_timeout=5)
    except psycopg2.OperationalError as error:
        raise PostgresUnavailable(
            f"PostgreSQL is not reachable ({str(error).strip()}); start it with "
            "scripts/services.sh (scripts/test does) or set HS_TEST_POSTGRES"
        ) from None
    conn.autocommit = True
    return conn


def create_database(prefix: str) -> dict[str, Any]:
    """A new empty UTF8/C-collation database ``<prefix>_<random>``; its psycopg2
    connection args.  Drop it with :func:`drop_database`."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
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
    }
    password = psycopg2.extensions.parse_dsn(maintenance_dsn()).get("password")
    if password:
        args["password"] = password
    return args


def drop_database(name: str) -> None:
    # FORCE ends our own leftover connections, but not an autovacuum worker that
    # happens to be in the database (another role's process): wait for it to finish.
    for attempt in range(50):
        conn = _connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except psycopg2.errors.InsufficientPrivilege:
            if attempt == 49:
                raise
        finally:
            conn.close()
        time.sleep(0.2)


@contextmanager
def temporary_database() -> Iterator[dict[str, Any]]:
    """Create an empty database; yields psycopg2 connection args for it."""
    try:
        args = create_database("hs_test")
    except PostgresUnavailable as unavailable:
        pytest.fail(str(unavailable))
    try:
        yield args
    finally:
        drop_database(args["database"])
