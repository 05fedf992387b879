"""A background reader of the events stream that keeps its own stored position.

The search indexer and the pusher queue (and later the federation and
application-service senders) each see every visible event once, in stream order,
from where they last stopped: the position is in ``stream_consumers``, not in
memory, so a consumer catches up after a restart and can move to a process of its
own (DESIGN.md, "The event pipeline", step 4).  Delivery is at least once: a crash
between handling a batch and storing the position hands the batch over again, so
handlers must be idempotent (an upsert, a unique key).

In one process the event path pokes consumers as events become visible; a timer
polls as well, so a missed poke (or, once split, a missed Redis notification) only
delays a consumer.

A handler that raises is retried with the same batch after a delay.  One bad event
must not stop a consumer for good: after :data:`MAX_ATTEMPTS` failures of a batch
the consumer reads half as many events, down to one, and an event that still fails
:data:`MAX_ATTEMPTS` times alone is logged with its ID and skipped.  While batches
fail the consumer is not :attr:`~EventStreamConsumer.healthy`, and
:meth:`~EventStreamConsumer.wait_for` does not wait for it.  Otherwise the position
never moves past an event that was not handed to the handler, except events
``get_events`` cannot load (logged with their IDs): the position stays a place in
the stream, not a promise about events that cannot be read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from homeserver.events.event import Event
from homeserver.storage.events import EventStore
from homeserver.storage.stream_consumers import StreamConsumerStore

logger = logging.getLogger(__name__)


@attrs.frozen
class StreamedEvent:
    #: The event's position in the events stream.
    position: int
    event: Event


Handle = Callable[[Sequence[StreamedEvent]], Awaitable[None]]

#: Failures of one batch before the consumer narrows it (and, at one event, skips it).
MAX_ATTEMPTS = 3


class EventStreamConsumer:
    def __init__(
        self,
        *,
        name: str,
        store: StreamConsumerStore,
        events: EventStore,
        reactor: IReactorTime,
        handle: Handle,
        start_from_beginning: bool,
        batch_size: int = 500,
        poll_interval_s: float = 5.0,
        retry_delay_s: float = 5.0,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        """``start_from_beginning``: a consumer that never ran reads the whole history
        (the search index of an existing server); otherwise it starts at the stream's
        position when it first starts (pushers do not notify about old messages)."""
        self._name = name
        self._store = store
        self._events = events
        self._reactor = reactor
        self._handle = handle
        self._start_from_beginning = start_from_beginning
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._retry_delay_s = retry_delay_s
        self._max_attempts = max_attempts
        #: Events read per batch: smaller while narrowing down a failing event.
        self._limit = batch_size
        #: Failures of the batch at the current limit.
        self._failures = 0
        #: While narrowing: the last position of the batch that first failed.
        self._narrow_until: int | None = None
        self._position: int | None = None
        self._running: defer.Deferred[None] | None = None
        self._again = False
        self._stopped = True
        self._timer: IDelayedCall | None = None
        #: (position, deferred) of callers waiting for the consumer to reach a position.
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []

    @property
    def position(self) -> int | None:
        """Every visible event up to here has been handled (None before start-up)."""
        return self._position

    @property
    def healthy(self) -> bool:
        """False while batches fail (being retried or narrowed down to a bad event)."""
        return self._failures == 0 and self._narrow_until is None

    @property
    def waiting(self) -> int:
        """Callers of :meth:`wait_for` waiting now."""
        return len(self._waiters)

    def start(self) -> None:
        self._stopped = False
        self.poke()

    async def stop(self) -> None:
        """Stop reading; a batch being handled is finished (and its position stored)."""
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._running is not None:
            await self._running
        for _, waiter in self._waiters:
            if not waiter.called:
                waiter.callback(None)
        self._waiters.clear()

    def poke(self) -> None:
        """New events may be visible: read them now (or right after the current run)."""
        if self._stopped:
            return
        if self._running is not None:
            self._again = True
            return
        self._running = defer.ensureDeferred(self._run())

    async def wait_for(self, position: int, timeout_s: float) -> bool:
        """Wait until events up to ``position`` are handled; False on timeout, at
        once if the consumer is stopped or failing (nobody waits for a consumer that
        is stuck).  Cancelling the caller cancels the wait and leaves nothing behind."""
        if self._position is not None and self._position >= position:
            return True
        if self._stopped or not self.healthy:
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
        return self._position is not None and self._position >= position

    async def _run(self) -> None:
        delay = self._poll_interval_s
        try:
            while not self._stopped:
                self._again = False
                try:
                    await self._catch_up()
                except Exception:
                    logger.exception("stream consumer %s failed; retrying", self._name)
                    delay = self._retry_delay_s
                    break
                if not self._again:
                    break
        finally:
            self._running = None
            if not self._stopped:
                self._timer = self._reactor.callLater(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.poke()

    async def _catch_up(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._position is None:
            stored = await self._store.get_position(self._name)
            if stored is None:
                stored = 0 if self._start_from_beginning else await self._current()
                await self._store.set_position(self._name, stored)
            self._position = stored
        while not self._stopped:
            up_to = await self._current()
            limit = self._limit
            rows = await self._store.events_after(self._position, up_to, limit)
            if rows:
                loaded = await self._events.get_events([event_id for _, event_id in rows])
                missing = [event_id for _, event_id in rows if event_id not in loaded]
                if missing:
                    logger.warning(
                        "stream consumer %s: events %s could not be loaded; passed over",
                        self._name,
                        ", ".join(missing),
                    )
                batch = [
                    StreamedEvent(position, loaded[event_id])
                    for position, event_id in rows
                    if event_id in loaded
                ]
                if not await self._handle_or_narrow(batch, rows):
                    # The one event that keeps failing: skipped, reading goes on.
                    rows = rows[:1]
            # A short read covers everything up to the bound, including positions
            # whose events are not shown (rejected, soft-failed): move past them too.
            full = len(rows) == limit
            reached = rows[-1][0] if full else up_to
            if reached > self._position:
                self._position = reached
                await self._store.set_position(self._name, reached)
            self._wake_waiters()
            if not full:
                return

    async def _handle_or_narrow(
        self, batch: Sequence[StreamedEvent], rows: Sequence[tuple[int, str]]
    ) -> bool:
        """Hand ``batch`` over: True when handled; False for a lone event that failed
        too often (to skip).  Raises (for a retry after a delay) otherwise, having
        halved the next read once this size failed too often."""
        try:
            await self._handle(batch)
        except Exception:
            self._failures += 1
            if self._failures < self._max_attempts:
                raise
            self._failures = 0
            if self._limit > 1:
                if self._narrow_until is None:
                    self._narrow_until = rows[-1][0]
                self._limit = max(1, len(rows) // 2)
                logger.warning(
                    "stream consumer %s: a batch from position %d failed %d times;"
                    " reading %d events at a time to find the bad one",
                    self._name,
                    rows[0][0],
                    self._max_attempts,
                    self._limit,
                )
                raise
            # Only an event that fails while the database answers is skipped: a write
            # that fails here means an outage, which is retried, never skipped over.
            assert self._position is not None
            await self._store.set_position(self._name, self._position)
            logger.exception(
                "stream consumer %s: skipping event %s (position %d): it failed %d times",
                self._name,
                rows[0][1],
                rows[0][0],
                self._max_attempts,
            )
            self._end_narrowing(rows[0][0])
            return False
        self._failures = 0
        self._end_narrowing(rows[-1][0])
        return True

    def _end_narrowing(self, reached: int) -> None:
        """Back to full batches once past the batch that first failed."""
        if self._narrow_until is not None and reached >= self._narrow_until:
            self._narrow_until = None
            self._limit = self._batch_size

    async def _current(self) -> int:
        return await self._events.get_max_stream_ordering()

    def _wake_waiters(self) -> None:
        position = self._position
        assert position is not None
        still: list[tuple[int, defer.Deferred[None]]] = []
        for wanted, waiter in self._waiters:
            if wanted <= position:
                if not waiter.called:
                    waiter.callback(None)
            else:
                still.append((wanted, waiter))
        self._waiters = still
