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

**Writing the position.**  By default the position is written after every batch,
before the next one is read: one commit per batch, and with events arriving one at a
time, one per event per consumer.  A consumer whose handling is harmless to repeat
(the federation sender: receivers ignore a PDU they have, by event ID; the search
index and the user directory: upserts) may ask for ``write_behind``: the position
moves in memory and is written :data:`WRITE_DELAY_S` later, with whatever moved
meanwhile, at most one write in flight (a few writes a second, whatever the event
rate).  A crash then loses at most the positions not yet written: the consumer starts
from an older position and hands those events over again; it never skips one, as a
position is only written once every event up to it was handled.  :meth:`stop` writes
the last position.  Not for a consumer whose repeat would be seen twice (pushers:
a notification delivered and removed from the queue would be queued and sent again).

The poke/run/poll/wait loop is :class:`~homeserver.streams.follower.StreamFollower`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from homeserver.events.event import Event
from homeserver.reactor import installed_reactor
from homeserver.storage.events import EventStore
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.streams.follower import StreamFollower

logger = logging.getLogger(__name__)


@attrs.frozen
class StreamedEvent:
    #: The event's position in the events stream.
    position: int
    event: Event


Handle = Callable[[Sequence[StreamedEvent]], Awaitable[None]]

#: Failures of one batch before the consumer narrows it (and, at one event, skips it).
MAX_ATTEMPTS = 3
#: With ``write_behind``: wait between the position moving and the write storing it
#: (and whatever it moved to meanwhile).  The most a crash makes a consumer repeat.
WRITE_DELAY_S = 0.2
#: With ``write_behind``: wait before writing again after a failed write.
WRITE_RETRY_S = 5.0


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
        write_behind: bool = False,
        write_reactor: IReactorTime | None = None,
    ) -> None:
        """``start_from_beginning``: a consumer that never ran reads the whole history
        (the search index of an existing server); otherwise it starts at the stream's
        position when it first starts (pushers do not notify about old messages).

        ``write_behind``: the position is written behind (see the module's
        docstring): only for a ``handle`` that may see events again after a crash.
        ``write_reactor``: the clock of its write delay (the installed reactor by
        default: the delay is real time even where ``reactor`` is a test's clock)."""
        self._name = name
        self._store = store
        self._events = events
        self._handle = handle
        self._start_from_beginning = start_from_beginning
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        #: Events read per batch: smaller while narrowing down a failing event.
        self._limit = batch_size
        #: Failures of the batch at the current limit.
        self._failures = 0
        #: While narrowing: the last position of the batch that first failed.
        self._narrow_until: int | None = None
        self._position: int | None = None
        self._writer = PositionWriter(
            name,
            store,
            (installed_reactor() if write_reactor is None else write_reactor)
            if write_behind
            else None,
        )
        self._follower = StreamFollower(
            reactor=reactor,
            catch_up=self._catch_up,
            position=lambda: self._position,
            poll_interval_s=poll_interval_s,
            retry_delay_s=retry_delay_s,
            failure_message=f"stream consumer {name} failed; retrying",
            healthy=lambda: self.healthy,
        )

    @property
    def position(self) -> int | None:
        """Every visible event up to here has been handled (None before start-up)."""
        return self._position

    @property
    def stored_position(self) -> int | None:
        """The position as last written to ``stream_consumers`` by this consumer
        (None before its first write): where a restart would resume, at or behind
        :attr:`position` (behind it while a write is due, with ``write_behind``)."""
        return self._writer.stored

    @property
    def healthy(self) -> bool:
        """False while batches fail (being retried or narrowed down to a bad event)."""
        return self._failures == 0 and self._narrow_until is None

    @property
    def waiting(self) -> int:
        """Callers of :meth:`wait_for` waiting now."""
        return self._follower.waiting

    def start(self) -> None:
        self._writer.start()
        self._follower.start()

    async def stop(self) -> None:
        """Stop reading; a batch being handled is finished, and the position written."""
        await self._follower.stop()
        await self._writer.stop()

    def poke(self) -> None:
        """New events may be visible: read them now (or right after the current run)."""
        self._follower.poke()

    async def wait_for(self, position: int, timeout_s: float) -> bool:
        """Wait until events up to ``position`` are handled; False on timeout, at
        once if the consumer is stopped or failing (nobody waits for a consumer that
        is stuck).  Cancelling the caller cancels the wait and leaves nothing behind."""
        return await self._follower.wait_for(position, timeout_s)

    async def _catch_up(self) -> None:
        if self._position is None:
            stored = await self._store.get_position(self._name)
            if stored is None:
                stored = 0 if self._start_from_beginning else await self._current()
                # Written at once, even behind: a restart must not start from the
                # stream's end again, past events this run handles.
                await self._writer.write_now(stored)
            else:
                self._writer.stored = stored
            self._position = stored
        while not self._follower.stopped:
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
                await self._writer.moved(reached)
            self._follower.advanced()
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
            await self._writer.write_now(self._position)
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


class PositionWriter:
    """A consumer's position to ``stream_consumers``: written through (each move
    awaited), or, given a ``reactor`` for the delay, behind: a move only updates
    memory; a write begins :data:`WRITE_DELAY_S` later and stores the latest position,
    at most one write in flight.  Only positions the consumer reached are written,
    never more than it handled."""

    def __init__(self, name: str, store: StreamConsumerStore, reactor: IReactorTime | None) -> None:
        self._name = name
        self._store = store
        self._reactor = reactor
        #: The newest position the consumer reached (None: none yet).
        self._latest: int | None = None
        #: What the last completed write stored (or what was read at start-up).
        self.stored: int | None = None
        self._writing: defer.Deferred[None] | None = None
        self._timer: IDelayedCall | None = None
        self._stopped = True

    def start(self) -> None:
        self._stopped = False

    async def moved(self, position: int) -> None:
        """The consumer handled every event up to ``position``: written now (through),
        or later (behind)."""
        self._latest = position
        if self._reactor is None:
            await self._write(position)
        else:
            self._schedule(WRITE_DELAY_S)

    async def write_now(self, position: int) -> None:
        """Write ``position`` (or a newer one reached) now, after any write under way;
        raises if the write fails."""
        self._latest = max(position, self._latest or position)
        self._cancel_timer()
        while self._writing is not None:
            await self._writing  # never fails: _write_behind logs
            self._cancel_timer()
        await self._write(self._latest)

    async def stop(self) -> None:
        """Write the last position reached (a restart then repeats nothing)."""
        self._stopped = True
        self._cancel_timer()
        while self._writing is not None:
            await self._writing
        if self._latest is not None and self._latest != self.stored:
            try:
                await self._write(self._latest)
            except Exception:
                # Nothing lost: the next start repeats the events since the last write.
                logger.exception("stream consumer %s: could not store its position", self._name)

    async def _write(self, position: int) -> None:
        await self._store.set_position(self._name, position)
        self.stored = position

    def _schedule(self, delay: float) -> None:
        if self._stopped or self._writing is not None or self._timer is not None:
            return
        if self._reactor is not None and self._latest is not None and self._latest != self.stored:
            self._timer = self._reactor.callLater(delay, self._begin)

    def _begin(self) -> None:
        self._timer = None
        if self._writing is None and not self._stopped:
            writing = defer.ensureDeferred(self._write_behind())
            # A store that answers at once has finished already: nothing in flight.
            self._writing = None if writing.called else writing

    async def _write_behind(self) -> None:
        assert self._latest is not None
        failed = False
        try:
            await self._write(self._latest)
        except Exception:
            failed = True
            logger.exception(
                "stream consumer %s: could not store its position; retrying in %ss",
                self._name,
                WRITE_RETRY_S,
            )
        finally:
            self._writing = None
        # Positions reached meanwhile (or the one that failed).
        self._schedule(WRITE_RETRY_S if failed else WRITE_DELAY_S)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
