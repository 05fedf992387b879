"""Versioned schema migrations, applied in order at start-up.

Migrations live in ``homeserver/storage/schema/`` as ``NNNN_name.sql`` (portable),
``NNNN_name.<dialect>.sql`` (``sqlite``/``postgres``; used instead of a portable file
for that engine) or ``NNNN_name.py`` (a ``run(txn)`` function, for work SQL cannot
express portably, such as creating sequences).  The file name says which store owns
the tables.  Each migration runs in its own transaction and is recorded in
``schema_migrations``; a database that has migrations this code does not know was
written by a newer version and is refused.
"""

from __future__ import annotations

import importlib
import logging
import re
import time
from collections.abc import Callable
from importlib import resources

import attrs

from homeserver.storage.database import Database
from homeserver.storage.engines import PostgresEngine
from homeserver.storage.transaction import Transaction

logger = logging.getLogger(__name__)

_SCHEMA_PACKAGE = "homeserver.storage.schema"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)(?:\.(sqlite|postgres))?\.(sql|py)$")
#: Arbitrary constant identifying our migration lock among PostgreSQL advisory locks.
_PG_MIGRATION_LOCK = 0x6D6873


class DatabaseTooNewError(Exception):
    """The database has migrations applied that this version does not know."""


@attrs.frozen
class Migration:
    version: int
    name: str
    apply: Callable[[Transaction], None]


def available_migrations(dialect: str) -> list[Migration]:
    """Every migration for ``dialect``, in version order."""
    chosen: dict[int, tuple[str, str, str | None]] = {}
    for entry in resources.files(_SCHEMA_PACKAGE).iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        number, name, file_dialect, kind = match.groups()
        if file_dialect is not None and file_dialect != dialect:
            continue
        version = int(number)
        previous = chosen.get(version)
        if previous is not None and previous[1] != name:
            raise RuntimeError(f"two migrations share number {version}: {previous[1]}, {name}")
        # An engine-specific file replaces the portable one.
        if previous is None or file_dialect is not None:
            chosen[version] = (entry.name, name, kind)
    migrations = []
    for version in sorted(chosen):
        file_name, name, kind = chosen[version]
        if kind == "py":
            module = importlib.import_module(f"{_SCHEMA_PACKAGE}.{file_name[:-3]}")
            apply = module.run
        else:
            sql = resources.files(_SCHEMA_PACKAGE).joinpath(file_name).read_text("utf-8")
            apply = _sql_runner(sql)
        migrations.append(Migration(version, name, apply))
    return migrations


def _sql_runner(sql: str) -> Callable[[Transaction], None]:
    statements = _split_statements(sql)

    def run(txn: Transaction) -> None:
        for statement in statements:
            txn.execute(statement)

    return run


def _split_statements(sql: str) -> list[str]:
    # Our schema files keep one statement per ';'-terminated block and never put ';'
    # inside literals, so splitting on line-ending semicolons is exact.
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    text = "\n".join(lines)
    return [part.strip() for part in re.split(r";\s*(?:\n|$)", text) if part.strip()]


async def prepare_database(database: Database) -> int:
    """Bring the schema up to date; returns the resulting schema version."""
    migrations = available_migrations(database.engine.dialect)
    latest_known = migrations[-1].version if migrations else 0
    current = await database.run_interaction("schema_version", _ensure_version_table)
    if current > latest_known:
        raise DatabaseTooNewError(
            f"the database has schema version {current}, but this server only knows "
            f"versions up to {latest_known}: it was written by a newer version of the "
            "server; upgrade the server or restore a backup"
        )
    for migration in migrations:
        if migration.version <= current:
            continue
        logger.info("applying schema migration %04d_%s", migration.version, migration.name)
        applied = await database.run_interaction(
            f"migration_{migration.version}", _apply_migration, migration
        )
        if applied:
            current = migration.version
    return max(current, await database.run_interaction("schema_version", _current_version))


def _ensure_version_table(txn: Transaction) -> int:
    txn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ts BIGINT NOT NULL)"
    )
    return _current_version(txn)


def _current_version(txn: Transaction) -> int:
    txn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    row = txn.fetchone()
    return int(row[0]) if row else 0


def _apply_migration(txn: Transaction, migration: Migration) -> bool:
    if isinstance(txn.engine, PostgresEngine):
        # Several worker processes may start at once against one database.
        txn.execute("SELECT pg_advisory_xact_lock(?)", (_PG_MIGRATION_LOCK,))
    txn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,))
    if txn.fetchone() is not None:
        return False  # another process applied it while we waited for the lock
    migration.apply(txn)
    txn.execute(
        "INSERT INTO schema_migrations (version, name, applied_ts) VALUES (?, ?, ?)",
        (migration.version, migration.name, int(time.time() * 1000)),
    )
    return True
