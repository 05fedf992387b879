"""Fixtures shared by the whole suite.

``database_config`` is parametrised over both engines, so every test that uses it
(directly or through ``db`` or ``server_process``) runs once on
SQLite and once on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from homeserver.storage.migrations import prepare_database
from tests.support.accounts import SHARED_SECRET
from tests.support.postgres import temporary_database
from tests.support.s3 import s3_server as s3_server  # one moto S3 per test process
from tests.support.server_process import ServerProcess, free_port, server_config


@pytest.fixture(params=["sqlite", "postgres"])
def database_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A ``database:`` config section for an empty database of each engine."""
    if request.param == "sqlite":
        yield {"name": "sqlite3", "args": {"database": str(tmp_path / "homeserver.db")}}
        return
    with temporary_database() as args:
        yield {"name": "psycopg2", "args": {**args, "cp_min": 1, "cp_max": 4}}


@pytest_twisted.async_yield_fixture
async def db(database_config: dict[str, Any]) -> AsyncIterator[Database]:
    """A migrated database on each engine."""
    args = dict(database_config["args"])
    cp_min = args.pop("cp_min", 1)
    cp_max = args.pop("cp_max", 1)
    database = Database.connect(
        database_config["name"], args, reactor=installed_reactor(), cp_min=cp_min, cp_max=cp_max
    )
    await prepare_database(database)
    yield database
    database.close()


@pytest.fixture
def server_process(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    """The real ``homeserver`` command running against each engine."""
    config = server_config(
        tmp_path,
        database_config,
        free_port(),
        registration_shared_secret=SHARED_SECRET,
        max_request_body_size="64K",
    )
    process = ServerProcess(tmp_path, config)
    process.start()
    yield process
    process.stop()
