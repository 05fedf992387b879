"""The one database API of the server, over SQLite or PostgreSQL.

Queries run on adbapi's thread pool, never on the reactor thread.  Each call of
:meth:`Database.run_interaction` is one transaction: committed when the function
returns, rolled back when it raises, and run again (a few times) when the engine
says the failure was a transient conflict.

Reads that write nothing go through :meth:`Database.run_read` instead: a read-only
transaction that never waits for a write.  On SQLite writes are serialised on one
connection, so reads get a small pool of read-only connections of their own (WAL
lets them read while the writer writes); on PostgreSQL the one pool already runs
transactions in parallel and reads just run there marked READ ONLY.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from twisted.enterprise import adbapi

from homeserver.reactor import IDatabaseReactor
from homeserver.storage.engines import Engine, Sqlite3Engine, create_engine
from homeserver.storage.transaction import Transaction

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: How often a transaction that hit a serialization failure or lock is re-run.
MAX_ATTEMPTS = 8
#: Upper bound of the random pause before the first re-run; it doubles each time, so
#: writers contending for one row spread out instead of colliding again at once.
RETRY_PAUSE_SECONDS = 0.002

#: Read-only connections next to SQLite's one write connection.  Reads wait only for
#: each other, and a few threads are all two to four cores keep busy.
SQLITE_READ_CONNECTIONS = 3


class Database:
    """Runs store functions in transactions on a pool of connections."""

    def __init__(
        self,
        engine: Engine,
        pool: adbapi.ConnectionPool,
        *,
        reactor: IDatabaseReactor | None = None,
        read_args: Mapping[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self._pool = pool
        self._reactor = reactor
        #: How to open the separate read pool (SQLite files only); None: reads share
        #: ``_pool`` (PostgreSQL, or in-memory SQLite, which one connection owns).
        self._read_args = dict(read_args) if read_args is not None else None
        #: Opened on the first read when separate.
        self._read_pool: adbapi.ConnectionPool | None = pool if read_args is None else None
        #: Whether a write transaction has completed (so the file exists, in WAL mode).
        self._wrote = False
        self._closed = False

    @classmethod
    def connect(
        cls,
        engine_name: str,
        connection_args: Mapping[str, Any],
        *,
        reactor: IDatabaseReactor,
        cp_min: int = 1,
        cp_max: int = 10,
    ) -> Database:
        """Open a pool for ``engine_name`` (``sqlite3`` or ``psycopg2``)."""
        engine = create_engine(engine_name)
        args = dict(connection_args)
        read_args = None
        if isinstance(engine, Sqlite3Engine):
            # One write connection: SQLite has one writer at a time anyway, and a
            # single connection never deadlocks against itself.  Reads have their own.
            args.setdefault("check_same_thread", False)
            cp_min = cp_max = 1
            read_args = _sqlite_read_args(args)
        pool = _open_pool(
            engine.module_name, args, engine.on_new_connection, reactor, cp_min, cp_max
        )
        return cls(engine, pool, reactor=reactor, read_args=read_args)

    async def run_interaction(
        self,
        description: str,
        func: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run ``func(txn, *args, **kwargs)`` in a transaction on a database thread."""
        result = await self._run(
            self._pool, self.engine.begin, None, description, func, *args, **kwargs
        )
        self._wrote = True
        return result

    async def run_unsynced(
        self,
        description: str,
        func: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Like :meth:`run_interaction`, for derived data that can be recomputed from
        what is stored (e.g. unread-count checkpoints): the commit does not wait for
        the disk.  A crash may lose it, never corrupt it, and any later synced commit
        makes it durable too (on both engines the log is written in order).  Saves an
        fsync on paths such as ``/sync`` that should never wait for one.
        """
        result = await self._run(
            self._pool,
            self.engine.begin_unsynced,
            self.engine.end_unsynced,
            description,
            func,
            *args,
            **kwargs,
        )
        self._wrote = True
        return result

    async def run_read(
        self,
        description: str,
        func: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Like :meth:`run_interaction`, in a read-only transaction: writes in ``func``
        fail, and it never waits for a write transaction to finish.

        It sees everything committed before it began, so a read started after an
        awaited write sees that write; it does not see a write still in progress.
        (In-memory SQLite has only its one connection: reads share it, unenforced.)
        """
        pool = self._read_pool if self._read_pool is not None else await self._open_read_pool()
        return await self._run(
            pool, self.engine.begin_read, None, description, func, *args, **kwargs
        )

    async def execute(self, description: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (empty for statements without rows)."""
        return await self.run_interaction(description, _statement_rows, sql, args)

    async def execute_read(self, description: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one read-only statement (see :meth:`run_read`) and return its rows."""
        return await self.run_read(description, _statement_rows, sql, args)

    async def _open_read_pool(self) -> adbapi.ConnectionPool:
        assert self._read_args is not None
        if self._closed:
            raise RuntimeError("the database is closed")
        # A read-only connection can neither create the file nor make it WAL: the
        # write connection does both when it opens.  Opening readers on first use also
        # means they start after start-up's migrations (run before anything reads), so
        # no reader ever sees a half-migrated schema, and never wait for the writer.
        if not self._wrote:
            await self._pool.runWithConnection(lambda conn: None)
            if self._closed:
                raise RuntimeError("the database is closed")
        if self._read_pool is None:
            self._read_pool = _open_pool(
                self.engine.module_name,
                self._read_args,
                self.engine.on_new_read_connection,
                self._reactor,
                SQLITE_READ_CONNECTIONS,
                SQLITE_READ_CONNECTIONS,
            )
        return self._read_pool

    async def _run(
        self,
        pool: adbapi.ConnectionPool,
        begin: Callable[[Any], None],
        end: Callable[[Any], None] | None,
        description: str,
        func: Callable[..., R],
        *args: Any,
        **kwargs: Any,
    ) -> R:
        outcome: tuple[R, list[Callable[[], None]]] = await pool.runWithConnection(
            self._run_transaction, begin, end, description, func, *args, **kwargs
        )
        result, after_commit = outcome
        for callback in after_commit:
            callback()
        return result

    def _run_transaction(
        self,
        conn: Any,
        begin: Callable[[Any], None],
        end: Callable[[Any], None] | None,
        description: str,
        func: Callable[..., R],
        *args: Any,
        **kwargs: Any,
    ) -> tuple[R, list[Callable[[], None]]]:
        # Runs on a database thread.
        try:
            return self._attempt_transaction(conn, begin, description, func, *args, **kwargs)
        finally:
            if end is not None:
                end(conn)

    def _attempt_transaction(
        self,
        conn: Any,
        begin: Callable[[Any], None],
        description: str,
        func: Callable[..., R],
        *args: Any,
        **kwargs: Any,
    ) -> tuple[R, list[Callable[[], None]]]:
        attempt = 1
        while True:
            cursor = conn.cursor()
            txn = Transaction(description, cursor, self.engine)
            try:
                begin(cursor)
                result = func(txn, *args, **kwargs)
                # Closed explicitly, not left to garbage collection (which a store
                # keeping ``txn`` would defeat): on SQLite a statement with rows left
                # unread keeps the read snapshot open past COMMIT, so the connection
                # would read stale data and WAL checkpoints could not pass it.
                cursor.close()
                conn.commit()
                return result, txn.after_commit
            except Exception as error:
                cursor.close()
                conn.rollback()
                if attempt < MAX_ATTEMPTS and self.engine.is_retryable(error):
                    logger.info("[%s] retrying after %s (attempt %d)", description, error, attempt)
                    # On a database thread: pausing here never blocks the reactor.
                    time.sleep(random.uniform(0, RETRY_PAUSE_SECONDS * 2 ** (attempt - 1)))
                    attempt += 1
                    continue
                raise

    def close(self) -> None:
        """Close every connection, readers first: the last connection to close
        checkpoints SQLite's WAL into the file, which a read-only one cannot."""
        self._closed = True
        if self._read_pool is not None and self._read_pool is not self._pool:
            self._read_pool.close()
        self._pool.close()


def _open_pool(
    module_name: str,
    args: Mapping[str, Any],
    on_open: Callable[[Any], None],
    reactor: IDatabaseReactor | None,
    cp_min: int,
    cp_max: int,
) -> adbapi.ConnectionPool:
    return adbapi.ConnectionPool(
        module_name,
        cp_min=cp_min,
        cp_max=cp_max,
        cp_reconnect=True,
        cp_openfun=on_open,
        cp_reactor=reactor,
        **args,
    )


def _statement_rows(txn: Transaction, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    txn.execute(sql, args)
    return txn.fetchall() if txn.returns_rows else []


def _sqlite_read_args(args: Mapping[str, Any]) -> dict[str, Any] | None:
    """Connection arguments opening the same SQLite file read-only; None when the
    database is in memory, where another connection would see a different database."""
    database = os.fsdecode(args.get("database", ""))
    if args.get("uri"):
        if database.startswith("file::memory:") or "mode=memory" in database:
            return None
        uri = database + ("&" if "?" in database else "?") + "mode=ro"
    else:
        if database in ("", ":memory:"):
            return None
        uri = Path(database).absolute().as_uri() + "?mode=ro"
    return {**args, "database": uri, "uri": True}
