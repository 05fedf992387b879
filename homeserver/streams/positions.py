"""Handing out stream positions and knowing up to where they are all written.

Two transactions that took positions 10 and 11 may commit in either order on
PostgreSQL.  A reader that saw 11 committed and moved its token to 11 would never see
10.  So a position becomes *visible* only once every position before it has been
written or abandoned; writers wait for their positions to become visible before
they announce them, and readers never look past :attr:`current`.

One process allocates the positions of a stream (the event writer); with several
writers each would take its positions from the database sequence and the tracker
would follow the slowest writer.
"""

from __future__ import annotations

import collections

from twisted.internet import defer


class StreamPositions:
    def __init__(self, current: int) -> None:
        self._current = current
        self._next = current + 1
        #: Allocated positions in order; True once written or abandoned.
        self._in_flight: collections.OrderedDict[int, bool] = collections.OrderedDict()
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []

    @property
    def current(self) -> int:
        """Every position up to this one is written (or abandoned)."""
        return self._current

    def allocate(self) -> int:
        position = self._next
        self._next += 1
        self._in_flight[position] = False
        return position

    def finish(self, position: int) -> None:
        """``position`` is written, or will never be (its transaction failed)."""
        if position in self._in_flight:
            self._in_flight[position] = True
        while self._in_flight:
            oldest, done = next(iter(self._in_flight.items()))
            if not done:
                break
            self._in_flight.popitem(last=False)
            self._current = oldest
        if not self._in_flight:
            self._current = self._next - 1
        self._wake()

    async def wait_until_visible(self, position: int) -> None:
        if position <= self._current:
            return
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.append((position, waiter))
        await waiter

    def _wake(self) -> None:
        ready = [w for w in self._waiters if w[0] <= self._current]
        if not ready:
            return
        self._waiters = [w for w in self._waiters if w[0] > self._current]
        for _position, waiter in ready:
            waiter.callback(None)
