"""Stream positions: handed out by the database, announced only in order.

Every stored stream (events, account data, receipts) takes its positions from a
database sequence (``Engine.next_id``: a real sequence on PostgreSQL; on SQLite a
row of ``id_sequences``, safe because the single write connection serialises
writers), inside the transaction that writes the rows.

Two transactions that took positions 10 and 11 may commit in either order on
PostgreSQL.  A reader that saw 11 committed and moved its token to 11 would never
see 10.  So :class:`StreamPositions` tracks the positions this process allocated and
has not finished yet, and :attr:`StreamPositions.current` is the highest committed
position below which every allocated position is committed or abandoned.  Readers
never look past ``current``; writers wait for their position to become visible
(:meth:`StreamPositions.wait_until_visible`) before they announce it.

No lock is held across I/O: positions are registered from database threads and
finished on the reactor, so a :class:`threading.Lock` guards the in-memory sets for
the few statements that touch them, never a database call.

With several writer processes each would run its own tracker for the positions it
allocates and learn the others' progress (docs/architecture.md, "Several writers").
"""

from __future__ import annotations

import collections
import contextlib
import functools
import heapq
import itertools
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from twisted.internet import defer

if TYPE_CHECKING:
    from homeserver.storage.transaction import Transaction


class StreamPositions:
    """One stream's positions: allocated from ``sequence``, visible in order."""

    def __init__(self, sequence: str, current: int) -> None:
        """``current``: the highest position already stored (nothing is in flight)."""
        self.sequence = sequence
        self._lock = threading.Lock()
        self._current = current
        #: The highest position registered so far.
        self._max_allocated = current
        #: Allocated and not yet finished: position -> how many writes hold it.  On
        #: SQLite a rolled-back position is handed out again, possibly before the
        #: write that abandoned it has finished it, so one number can be held twice.
        self._in_flight: collections.Counter[int] = collections.Counter()
        #: Committed positions above ``_current``, waiting for a lower one to finish.
        self._committed: set[int] = set()
        #: Sequence fetches under way, by the highest registered position when each
        #: began: until it registers what it got, ``current`` may not pass that mark.
        self._fetches: collections.Counter[int] = collections.Counter()
        self._waiters: list[tuple[int, int, defer.Deferred[None]]] = []
        self._waiter_ids = itertools.count()

    @property
    def current(self) -> int:
        """Every position up to this one is committed or abandoned."""
        return self._current

    def allocate_txn(self, txn: Transaction) -> int:
        """The next position of the sequence, registered as in flight.

        Runs inside ``txn`` on a database thread.  The caller must :meth:`finish` the
        position once ``txn`` has committed or rolled back; :meth:`writing` does.
        """
        with self._lock:
            # PostgreSQL hands out positions in nextval order but another fetch may
            # register its later position first; this mark keeps ``current`` below
            # whatever this fetch gets until it is registered.
            mark = self._max_allocated
            self._fetches[mark] += 1
        try:
            position = txn.engine.next_id(txn, self.sequence)
            with self._lock:
                self._in_flight[position] += 1
                self._max_allocated = max(self._max_allocated, position)
        finally:
            with self._lock:
                _release(self._fetches, mark)
        return position

    def finish(self, position: int, *, committed: bool) -> None:
        """``position``'s transaction committed, or rolled back (on the reactor)."""
        self.finish_all([(position, committed)])

    def finish_all(self, positions: Iterable[tuple[int, bool]]) -> None:
        """:meth:`finish` for each (position, committed), waking waiters once."""
        with self._lock:
            for position, committed in positions:
                _release(self._in_flight, position)
                # An abandoned position never moves ``current`` by itself: SQLite
                # hands a rolled-back position out again, so only a commit above it
                # proves it is passed.  (On PostgreSQL the next commit passes it.)
                if committed and position > self._current:
                    self._committed.add(position)
            self._advance()
        self._wake()

    @contextlib.contextmanager
    def writing(self) -> Iterator[PositionsWrite]:
        """Allocate with ``write.allocate(txn)`` inside the transactions run in the
        block; when the block ends each position is finished, committed if its
        transaction committed.  Positions are not yet visible then: wait for them
        with :meth:`wait_until_visible` before announcing them.

        The block must not be cancelled while a transaction runs (writes always run
        to the end): a transaction still running would be counted as abandoned.
        """
        write = PositionsWrite(self)
        try:
            yield write
        finally:
            self.finish_all(write.outcomes())

    async def wait_until_visible(self, position: int) -> None:
        if position <= self._current:
            return
        waiter: defer.Deferred[None] = defer.Deferred()
        heapq.heappush(self._waiters, (position, next(self._waiter_ids), waiter))
        await waiter

    def _advance(self) -> None:
        # Called with the lock held.
        limit = min(self._in_flight) - 1 if self._in_flight else None
        if self._fetches:
            mark = min(self._fetches)
            limit = mark if limit is None else min(limit, mark)
        ready = [p for p in self._committed if limit is None or p <= limit]
        if ready:
            self._current = max(self._current, *ready)
            self._committed.difference_update(ready)

    def _wake(self) -> None:
        # On the reactor: Deferreds fire only there.
        while self._waiters and self._waiters[0][0] <= self._current:
            _position, _id, waiter = heapq.heappop(self._waiters)
            waiter.callback(None)


class PositionsWrite:
    """The positions one write allocated (see :meth:`StreamPositions.writing`)."""

    def __init__(self, stream: StreamPositions) -> None:
        self._stream = stream
        # Appended on a database thread, read on the reactor once the transaction
        # is over (the Deferred callback orders the two).
        self._allocated: list[int] = []
        self._committed: set[int] = set()

    def allocate(self, txn: Transaction) -> int:
        """The next position, inside ``txn``, the transaction writing its rows."""
        position = self._stream.allocate_txn(txn)
        self._allocated.append(position)
        # Only the attempt that commits runs these: positions of a failed attempt
        # (retried or not) are abandoned.
        txn.call_after_commit(functools.partial(self._committed.add, position))
        return position

    def outcomes(self) -> list[tuple[int, bool]]:
        return [(position, position in self._committed) for position in self._allocated]


class LazyStreamPositions:
    """A stream's tracker, created on first use from the highest position stored
    (stores are built before the database may be read)."""

    def __init__(self, sequence: str, highest_stored: Callable[[], Awaitable[int]]) -> None:
        self._sequence = sequence
        self._highest_stored = highest_stored
        self._stream: StreamPositions | None = None
        self._loading = defer.DeferredLock()

    async def get(self) -> StreamPositions:
        if self._stream is None:
            async with self._loading:
                if self._stream is None:
                    self._stream = StreamPositions(self._sequence, await self._highest_stored())
        return self._stream


def _release(counter: collections.Counter[int], key: int) -> None:
    if counter[key] > 1:
        counter[key] -= 1
    else:
        counter.pop(key, None)
