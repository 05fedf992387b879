"""A thin cursor wrapper handed to store functions that run inside a transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from homeserver.errors import TextWithNulError

if TYPE_CHECKING:
    from homeserver.storage.engines import Engine

logger = logging.getLogger(__name__)

#: Queries slower than this are logged, with the transaction's description.
SLOW_QUERY_SECONDS = 0.5


def _check_no_nul(args: Sequence[Any]) -> None:
    for value in args:
        if type(value) is str and "\x00" in value:
            raise TextWithNulError("Text may not contain NUL characters")


class Transaction:
    """Executes portable SQL (``?`` placeholders) on one connection's cursor.

    Store code receives one of these in functions passed to
    ``Database.run_interaction``; it runs on a database thread, never the reactor.
    """

    def __init__(self, description: str, cursor: Any, engine: Engine) -> None:
        self.description = description
        self.engine = engine
        self._cursor = cursor
        #: Callbacks to run on the reactor after a successful commit.
        self.after_commit: list[Callable[[], None]] = []

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        _check_no_nul(args)
        started = time.perf_counter()
        self._cursor.execute(self.engine.convert_placeholders(sql), tuple(args))
        elapsed = time.perf_counter() - started
        if elapsed > SLOW_QUERY_SECONDS:
            logger.warning("[%s] slow query (%.3fs): %s", self.description, elapsed, sql)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(row) for row in rows]
        for row in rows:
            _check_no_nul(row)
        self._cursor.executemany(self.engine.convert_placeholders(sql), rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._cursor.fetchone()
        return row

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._cursor.fetchall()
        return rows

    @property
    def returns_rows(self) -> bool:
        """Whether the last statement produced a result set (SELECT, ... RETURNING)."""
        return self._cursor.description is not None

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def call_after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (e.g. cache invalidation)."""
        self.after_commit.append(callback)
