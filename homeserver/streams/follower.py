"""The run loop shared by background readers of a stream: poke, run, poll, wait.

A reader (the events stream consumer of :mod:`homeserver.streams.consumer`, the
device-list announcer of ``federation.e2ee.announcer``) keeps its own position and
its own way of catching up; what it shares is how catching up is driven:

- :meth:`StreamFollower.poke` runs ``catch_up`` now, or once more right after the run
  under way (pokes during a run coalesce into one more run);
- after a run a timer polls again (:attr:`poll_interval_s`), so a missed poke only
  delays the reader; after a failed run (an outage) it tries again after
  :attr:`retry_delay_s`, and the reader is :attr:`~StreamFollower.failing` meanwhile;
- :meth:`StreamFollower.wait_for` lets a caller wait (bounded) until the reader's
  position reaches a point, unless the reader is stopped or unhealthy: nobody waits
  for a reader that is stuck.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

logger = logging.getLogger(__name__)


class StreamFollower:
    def __init__(
        self,
        *,
        reactor: IReactorTime,
        catch_up: Callable[[], Awaitable[None]],
        position: Callable[[], int | None],
        poll_interval_s: float,
        retry_delay_s: float,
        failure_message: str,
        healthy: Callable[[], bool] | None = None,
        release_waiters_on_failure: bool = False,
    ) -> None:
        """``position``: the reader's position (None before its first run);
        ``healthy``: whether waiting for it makes sense (default: the last run did not
        fail); ``release_waiters_on_failure``: a failed run wakes every waiter (they
        see the position not reached) rather than letting them time out."""
        self._reactor = reactor
        self._catch_up = catch_up
        self._position = position
        self._poll_interval_s = poll_interval_s
        self._retry_delay_s = retry_delay_s
        self._failure_message = failure_message
        #: The last run failed (a retry is due).
        self.failing = False
        self._healthy = healthy if healthy is not None else lambda: not self.failing
        self._release_waiters_on_failure = release_waiters_on_failure
        self._running: defer.Deferred[None] | None = None
        self._again = False
        self._stopped = True
        self._timer: IDelayedCall | None = None
        #: (position, deferred) of callers waiting for the reader to reach a position.
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def waiting(self) -> int:
        """Callers of :meth:`wait_for` waiting now."""
        return len(self._waiters)

    def start(self) -> None:
        self._stopped = False
        self.poke()

    async def stop(self) -> None:
        """Stop running; the run under way is finished first.  Every waiter is woken."""
        self._stopped = True
        self._cancel_timer()
        if self._running is not None:
            await self._running
        self._release(everyone=True)

    def poke(self) -> None:
        """New items may be visible: catch up now (or right after the current run)."""
        if self._stopped:
            return
        if self._running is not None:
            self._again = True
            return
        self._running = defer.ensureDeferred(self._run())

    async def wait_for(self, position: int, timeout_s: float) -> bool:
        """Wait until the position reaches ``position``; False on timeout, at once if
        the reader is stopped or unhealthy.  Cancelling the caller cancels the wait and
        leaves nothing behind."""
        if self._reached(position):
            return True
        if self._stopped or not self._healthy():
            return False
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.append((position, waiter))

        def time_out() -> None:
            if not waiter.called:
                waiter.callback(None)

        timer = self._reactor.callLater(timeout_s, time_out)
        try:
            await waiter
        finally:
            if timer.active():
                timer.cancel()
            self._waiters = [entry for entry in self._waiters if entry[1] is not waiter]
        return self._reached(position)

    def advanced(self) -> None:
        """The reader's position moved: wake the callers waiting for it."""
        self._release(everyone=False)

    def _reached(self, position: int) -> bool:
        current = self._position()
        return current is not None and current >= position

    def _release(self, *, everyone: bool) -> None:
        still: list[tuple[int, defer.Deferred[None]]] = []
        for wanted, waiter in self._waiters:
            if everyone or self._reached(wanted):
                if not waiter.called:
                    waiter.callback(None)
            else:
                still.append((wanted, waiter))
        self._waiters = still

    async def _run(self) -> None:
        # A run under way makes the poll timer moot: the next one starts after it.
        self._cancel_timer()
        delay = self._poll_interval_s
        try:
            while not self._stopped:
                self._again = False
                try:
                    await self._catch_up()
                    self.failing = False
                except Exception:
                    logger.exception(self._failure_message)
                    self.failing = True
                    if self._release_waiters_on_failure:
                        self._release(everyone=True)
                    delay = self._retry_delay_s
                    break
                if not self._again:
                    break
        finally:
            self._running = None
            if not self._stopped:
                self._cancel_timer()
                self._timer = self._reactor.callLater(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.poke()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
