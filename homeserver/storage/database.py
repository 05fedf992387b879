"""The one database API of the server, over SQLite or PostgreSQL.

Queries run on adbapi's thread pool, never on the reactor thread.  Each call of
:meth:`Database.run_interaction` is one transaction: committed when the function
returns, rolled back when it raises, and run again (a few times) when the engine
says the failure was a transient conflict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from twisted.enterprise import adbapi

from homeserver.storage.engines import Engine, Sqlite3Engine, create_engine
from homeserver.storage.transaction import Transaction

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: How often a transaction that hit a serialization failure or lock is re-run.
MAX_ATTEMPTS = 5


class Database:
    """Runs store functions in transactions on a pool of connections."""

    def __init__(self, engine: Engine, pool: adbapi.ConnectionPool) -> None:
        self.engine = engine
        self._pool = pool

    @classmethod
    def connect(
        cls,
        engine_name: str,
        connection_args: Mapping[str, Any],
        *,
        reactor: Any,
        cp_min: int = 1,
        cp_max: int = 10,
    ) -> Database:
        """Open a pool for ``engine_name`` (``sqlite3`` or ``psycopg2``)."""
        engine = create_engine(engine_name)
        args = dict(connection_args)
        if isinstance(engine, Sqlite3Engine):
            # One connection: SQLite has one writer at a time anyway, and a single
            # connection never deadlocks against itself.
            args.setdefault("check_same_thread", False)
            cp_min = cp_max = 1
        pool = adbapi.ConnectionPool(
            engine.module_name,
            cp_min=cp_min,
            cp_max=cp_max,
            cp_reconnect=True,
            cp_openfun=engine.on_new_connection,
            cp_reactor=reactor,
            **args,
        )
        return cls(engine, pool)

    async def run_interaction(
        self,
        description: str,
        func: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run ``func(txn, *args, **kwargs)`` in a transaction on a database thread."""
        result, after_commit = await self._pool.runWithConnection(
            self._run_transaction, description, func, *args, **kwargs
        )
        for callback in after_commit:
            callback()
        return result

    async def execute(self, description: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (empty for statements without rows)."""

        def run(txn: Transaction) -> list[tuple[Any, ...]]:
            txn.execute(sql, args)
            return txn.fetchall() if txn.returns_rows else []

        return await self.run_interaction(description, run)

    def _run_transaction(
        self,
        conn: Any,
        description: str,
        func: Callable[..., R],
        *args: Any,
        **kwargs: Any,
    ) -> tuple[R, list[Callable[[], None]]]:
        # Runs on a database thread.
        attempt = 1
        while True:
            cursor = conn.cursor()
            txn = Transaction(description, cursor, self.engine)
            try:
                self.engine.begin(cursor)
                result = func(txn, *args, **kwargs)
                conn.commit()
                return result, txn.after_commit
            except Exception as error:
                conn.rollback()
                if attempt < MAX_ATTEMPTS and self.engine.is_retryable(error):
                    logger.info("[%s] retrying after %s (attempt %d)", description, error, attempt)
                    attempt += 1
                    continue
                raise
            finally:
                cursor.close()

    def close(self) -> None:
        self._pool.close()
