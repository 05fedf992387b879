"""What differs between SQLite and PostgreSQL, and nothing else.

Stores write portable SQL with ``?`` placeholders; an engine converts the placeholder
style, prepares new connections, recognises errors worth retrying and hands out ids
from named sequences.
"""

from __future__ import annotations

import abc
import re
import sqlite3
from typing import Any

from homeserver.storage.transaction import Transaction

_QMARK = re.compile(r"\?")


class Engine(abc.ABC):
    #: DB-API module name, as adbapi wants it.
    module_name: str
    #: Used in SQL file names: ``NNNN_name.<dialect>.sql`` holds engine-specific SQL.
    dialect: str

    @abc.abstractmethod
    def convert_placeholders(self, sql: str) -> str: ...

    @abc.abstractmethod
    def begin_unsynced(self, cursor: Any) -> None:
        """Begin a write whose commit need not wait for the disk (derived data)."""

    @abc.abstractmethod
    def end_unsynced(self, conn: Any) -> None:
        """Undo what :meth:`begin_unsynced` changed on the connection, if anything."""

    @abc.abstractmethod
    def on_new_connection(self, conn: Any) -> None:
        """Prepare a freshly opened connection (pragmas, isolation level)."""

    @abc.abstractmethod
    def begin(self, cursor: Any) -> None:
        """Start a transaction on ``cursor``'s connection."""

    @abc.abstractmethod
    def begin_read(self, cursor: Any) -> None:
        """Start a read-only transaction on ``cursor``'s connection."""

    def on_new_read_connection(self, conn: Any) -> None:
        """Prepare a connection of a separate read-only pool (engines that have one)."""
        self.on_new_connection(conn)

    @abc.abstractmethod
    def is_retryable(self, error: BaseException) -> bool:
        """Whether a transaction that failed with ``error`` may simply be run again."""

    @abc.abstractmethod
    def next_id(self, txn: Transaction, sequence: str) -> int:
        """The next value of ``sequence``; ids are unique and increase."""

    @abc.abstractmethod
    def create_sequence(self, txn: Transaction, sequence: str) -> None:
        """Create ``sequence`` (for use in migrations)."""

    @abc.abstractmethod
    def advance_sequence(self, txn: Transaction, sequence: str, past: int) -> None:
        """Make ``sequence`` hand out only ids above ``past`` (for migrations that seed
        it above ids stored by other means); never moves it back."""


class Sqlite3Engine(Engine):
    module_name = "sqlite3"
    dialect = "sqlite"

    def convert_placeholders(self, sql: str) -> str:
        return sql

    def on_new_connection(self, conn: sqlite3.Connection) -> None:
        # Autocommit mode: we issue BEGIN ourselves so DDL in migrations is atomic too.
        conn.isolation_level = None
        # WAL lets readers proceed while one writer commits.  synchronous=FULL makes
        # every acknowledged commit survive power loss, not just a process crash.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=ON")

    def begin(self, cursor: sqlite3.Cursor) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that later
        # writes can fail with SQLITE_BUSY when another process (the CLI) wrote meanwhile.
        cursor.execute("BEGIN IMMEDIATE")

    def begin_unsynced(self, cursor: sqlite3.Cursor) -> None:
        # Only between transactions: NORMAL in WAL mode skips the fsync at commit; the
        # next FULL commit syncs the log, this transaction's frames included.
        cursor.execute("PRAGMA synchronous=NORMAL")
        self.begin(cursor)

    def end_unsynced(self, conn: Any) -> None:
        conn.cursor().execute("PRAGMA synchronous=FULL")

    def on_new_read_connection(self, conn: sqlite3.Connection) -> None:
        # Opened with mode=ro, so no journal_mode here: the write connection made the
        # file WAL, which persists.  query_only as well, as mode=ro still allows TEMP
        # tables: a read transaction writes nothing at all.
        conn.isolation_level = None
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA query_only=1")

    def begin_read(self, cursor: sqlite3.Cursor) -> None:
        # Deferred: a WAL reader takes a snapshot at its first SELECT and never the
        # write lock, so it neither waits for nor blocks the writer.
        cursor.execute("BEGIN")

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)

    def next_id(self, txn: Transaction, sequence: str) -> int:
        txn.execute(
            "INSERT INTO id_sequences (name, value) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = id_sequences.value + 1"
            " RETURNING value",
            (sequence,),
        )
        row = txn.fetchone()
        assert row is not None
        return int(row[0])

    def create_sequence(self, txn: Transaction, sequence: str) -> None:
        txn.execute(
            "INSERT INTO id_sequences (name, value) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
            (sequence,),
        )

    def advance_sequence(self, txn: Transaction, sequence: str, past: int) -> None:
        txn.execute(
            "INSERT INTO id_sequences (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = MAX(id_sequences.value, excluded.value)",
            (sequence, past),
        )


class PostgresEngine(Engine):
    module_name = "psycopg2"
    dialect = "postgres"

    def convert_placeholders(self, sql: str) -> str:
        # Our SQL never contains a literal '?' or '%', so a plain substitution is safe.
        return _QMARK.sub("%s", sql)

    def on_new_connection(self, conn: Any) -> None:
        import psycopg2.extensions

        # Repeatable read gives each transaction one consistent snapshot; conflicts
        # surface as serialization failures, which we retry.
        conn.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ)
        conn.set_client_encoding("UTF8")

    def begin(self, cursor: Any) -> None:
        # psycopg2 opens a transaction implicitly on the first statement; the flag
        # only shapes that BEGIN (no round trip), and must be reset after a read.
        cursor.connection.readonly = False

    def begin_unsynced(self, cursor: Any) -> None:
        self.begin(cursor)
        # LOCAL: this transaction only.  Its commit returns before the WAL is flushed;
        # a crash can lose it, but PostgreSQL never applies a later commit without it.
        cursor.execute("SET LOCAL synchronous_commit TO OFF")

    def end_unsynced(self, conn: Any) -> None:
        pass  # SET LOCAL ended with the transaction.

    def begin_read(self, cursor: Any) -> None:
        # Sent as "BEGIN ... READ ONLY" with the implicit BEGIN: writes are refused.
        cursor.connection.readonly = True

    def is_retryable(self, error: BaseException) -> bool:
        import psycopg2

        if isinstance(error, psycopg2.Error):
            # 40001 serialization_failure, 40P01 deadlock_detected
            return error.pgcode in ("40001", "40P01")
        return False

    def next_id(self, txn: Transaction, sequence: str) -> int:
        txn.execute("SELECT nextval(?)", (sequence,))
        row = txn.fetchone()
        assert row is not None
        return int(row[0])

    def create_sequence(self, txn: Transaction, sequence: str) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", sequence):
            raise ValueError(f"bad sequence name {sequence!r}")
        txn.execute(f"CREATE SEQUENCE IF NOT EXISTS {sequence}")

    def advance_sequence(self, txn: Transaction, sequence: str, past: int) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", sequence):
            raise ValueError(f"bad sequence name {sequence!r}")
        txn.execute(f"SELECT last_value, is_called FROM {sequence}")
        row = txn.fetchone()
        assert row is not None
        # Before its first nextval a sequence's last_value is the value it will give.
        handed_out = int(row[0]) if row[1] else int(row[0]) - 1
        if past > handed_out:
            txn.execute("SELECT setval(?, ?)", (sequence, past))


def create_engine(name: str) -> Engine:
    """The engine for a ``database.name`` config value (Synapse's names)."""
    if name == "sqlite3":
        return Sqlite3Engine()
    if name == "psycopg2":
        return PostgresEngine()
    raise ValueError(f"unsupported database engine {name!r}")
