"""Concurrent identical requests share one computation.

A client that retries ``/sync`` while its first attempt is still long-polling (a
flaky network, a tab woken from sleep) asks the same question twice; both get the
answer of one computation.  The computation is cancelled only when every caller
has gone, so one caller giving up never takes the answer from another.

In-process state: two processes serving the same device would each compute once,
which is correct, only less thrifty (see docs/architecture.md, per-process state).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import attrs
from twisted.internet import defer
from twisted.python.failure import Failure

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@attrs.define
class _Flight:
    result: defer.Deferred[Any]
    callers: list[defer.Deferred[Any]] = attrs.Factory(list)


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._flights: dict[K, _Flight] = {}

    def in_flight(self) -> int:
        """How many computations are running (for tests and metrics)."""
        return len(self._flights)

    async def run(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        """``compute()``'s result, shared with every concurrent caller of the same key."""
        flight = self._flights.get(key)
        if flight is None:
            result: defer.Deferred[V] = defer.ensureDeferred(compute())  # type: ignore[arg-type]
            if result.called:
                # Done without waiting (everything came from caches): nobody to share
                # it with, and the callbacks below would run before this caller joins.
                done: V = await result
                return done
            flight = _Flight(result)
            self._flights[key] = flight
            flight.result.addBoth(self._finished, key, flight)
        caller: defer.Deferred[Any] = defer.Deferred(
            lambda cancelled: self._abandon(key, flight, cancelled)
        )
        flight.callers.append(caller)
        value: V = await caller
        return value

    def _finished(self, outcome: Any, key: K, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        for caller in flight.callers:
            if isinstance(outcome, Failure):
                caller.errback(outcome)
            else:
                caller.callback(outcome)
        flight.callers.clear()
        # Every caller has the outcome now; nothing is left unhandled here.

    def _abandon(self, key: K, flight: _Flight, caller: defer.Deferred[Any]) -> None:
        flight.callers.remove(caller)
        if flight.callers:
            return
        if self._flights.get(key) is flight:
            del self._flights[key]
        flight.result.cancel()
