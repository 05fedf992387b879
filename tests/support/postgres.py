"""Throwaway PostgreSQL databases for tests, one per test.

The server is found through ``HS_TEST_POSTGRES`` (a libpq connection string; by
default the role ``hs_test`` on 127.0.0.1 that ``scripts/test`` creates).  A test
that needs PostgreSQL fails — it is never skipped — when the server is unreachable:
CI must prove both engines.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import pytest

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=hs_test password=hs_test dbname=postgres"


def maintenance_dsn() -> str:
    return os.environ.get("HS_TEST_POSTGRES", DEFAULT_DSN)


def _connect() -> Any:
    try:
        conn = psycopg2.connect(maintenance_dsn(), connect_timeout=5)
    except psycopg2.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not reachable ({error.args[0].strip()}); run the tests with "
            "scripts/test, which starts it, or set HS_TEST_POSTGRES"
        )
    conn.autocommit = True
    return conn


@contextmanager
def temporary_database() -> Iterator[dict[str, Any]]:
    """Create an empty database; yields psycopg2 connection args for it."""
    name = f"hs_test_{uuid.uuid4().hex[:16]}"
    conn = _connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                " TEMPLATE template0"
            )
        params = conn.get_dsn_parameters()
        args = {
            "host": params.get("host", "127.0.0.1"),
            "port": int(params.get("port", 5432)),
            "user": params.get("user", "hs_test"),
            "database": name,
        }
        password = psycopg2.extensions.parse_dsn(maintenance_dsn()).get("password")
        if password:
            args["password"] = password
        yield args
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()
