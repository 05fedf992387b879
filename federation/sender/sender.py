"""The federation sender: local events and EDUs to other servers, per destination.

PDUs come from the events stream: an
:class:`~homeserver.streams.consumer.EventStreamConsumer` named
``federation_sender`` (its position in ``stream_consumers``) reads every visible
event; each one a local user sent goes to the servers :class:`EventRecipients` names.
Per batch, ``federation_outbound_rooms`` records for each (destination, room) the
newest position queued, in one transaction, *before* the events are handed to the
destination queues and before the consumer's position moves: after a crash or a
restart every destination with a room past its acknowledged position catches up
(queue.py), so nothing queued is lost.  EDUs: :meth:`send_edu` (ephemeral, in
memory) and :meth:`send_durable_edu` (a row first, deleted once acknowledged).
Remote events passed on (:meth:`send_on_behalf_of`) are rows of
``federation_forwarded_events``, pruned every :data:`PRUNE_INTERVAL_S` once no
destination can still need them (the consumer read them and every destination
acknowledged past them).

One :class:`DestinationQueue` per destination with something to do, forgotten when
idle; at most ``max_concurrent`` transactions in flight over all of them, so a
message in a room spanning hundreds of servers does not open hundreds of connections
at once.

spec: server-server-api.md#transactions, #pdus, #edus
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from federation.sender.acks import AckedPositions
from federation.sender.queue import Backoff, DestinationQueue, QueueDeps, TransactionClient
from federation.sender.recipients import EventRecipients, PartialServers
from federation.sender.transaction import Edu, PendingPdu, TransactionIds
from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.reactor import installed_reactor
from homeserver.storage.events import EventStore
from homeserver.storage.federation_outbound import FederationOutboundStore, QueuedPdu
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.streams.consumer import EventStreamConsumer, StreamedEvent

logger = logging.getLogger(__name__)

CONSUMER_NAME = "federation_sender"
#: Transactions in flight at once over every destination.
MAX_CONCURRENT_TRANSACTIONS = 50
#: At start, destinations that missed events are woken this many at a time, a
#: second apart, so a server back from a long stop does not query and connect for
#: every destination in the same instant.
START_WAKE_BATCH = 20
START_WAKE_INTERVAL_S = 1.0
#: Wait before trying again when the start-up queries fail (the database is down).
START_RETRY_S = 5.0
#: Destination queues handed new PDUs per reactor turn.  Handing PDUs to an idle queue
#: builds, signs and writes its transaction at once (~0.5 ms each): for a room on
#: 50 servers, all at once would hold the reactor ~25 ms in one go, and every client
#: request arriving meanwhile (the next message's ``PUT /send``) waits it out.  One
#: per turn, requests are served in between; and while clients get ahead, PDUs gather
#: into fewer, larger transactions.  (Fan-out benchmark, 50 servers: 1 per turn
#: ~13 ms per send, 2: ~15, 5: ~19, 10: ~23, all at once: ~75.)
QUEUES_PER_TURN = 1
#: How often the remote events passed on that every destination acknowledged are
#: forgotten (a few rows a day: joins, leaves and knocks made through us).
PRUNE_INTERVAL_S = 3600.0


class FederationSender:
    def __init__(
        self,
        *,
        server_name: str,
        client: TransactionClient,
        backoff: Backoff,
        store: FederationOutboundStore,
        events: EventStore,
        consumers: StreamConsumerStore,
        clock: Clock,
        reactor: IReactorTime,
        io_reactor: IReactorTime | None = None,
        allowed: Callable[[str], bool] = lambda _destination: True,
        max_concurrent: int = MAX_CONCURRENT_TRANSACTIONS,
        timeout_s: float = 60.0,
        poll_interval_s: float = 5.0,
        retry_delay_s: float = 5.0,
        prune_interval_s: float = PRUNE_INTERVAL_S,
        partial_servers: PartialServers | None = None,
    ) -> None:
        """``allowed``: False for destinations we must not send to
        (``federation_domain_whitelist``).  ``io_reactor``: the reactor serving
        network I/O, which :meth:`_handle` yields to between slices of destinations
        (the installed reactor by default; ``reactor`` may be a test's clock)."""
        self._server_name = server_name
        self._store = store
        self._clock = clock
        self._reactor = reactor
        self._io_reactor = installed_reactor() if io_reactor is None else io_reactor
        self._allowed = allowed
        self._recipients = EventRecipients(
            server_name=server_name,
            store=store,
            events=events,
            allowed=allowed,
            partial_servers=partial_servers,
        )
        self._deps = QueueDeps(
            server_name=server_name,
            client=client,
            backoff=backoff,
            store=store,
            events=events,
            recipients=self._recipients,
            clock=clock,
            reactor=reactor,
            ids=TransactionIds(clock.time_msec()),
            slots=defer.DeferredSemaphore(max_concurrent),
            # Its write delay is real time (``reactor`` may be a test's clock).
            acked=AckedPositions(store, self._io_reactor),
            timeout_s=timeout_s,
        )
        self.consumer = EventStreamConsumer(
            name=CONSUMER_NAME,
            store=consumers,
            events=events,
            reactor=reactor,
            handle=self._handle,
            # A server that starts federating has no backlog to send.
            start_from_beginning=False,
            poll_interval_s=poll_interval_s,
            # Replaying after a crash only resends PDUs, which receivers ignore.
            write_behind=True,
            retry_delay_s=retry_delay_s,
        )
        self._queues: dict[str, DestinationQueue] = {}
        self._started = False
        self._starting: defer.Deferred[None] | None = None
        self._waking: list[IDelayedCall] = []
        self._prune_interval_s = prune_interval_s
        self._prune_timer: IDelayedCall | None = None
        self._pruning: defer.Deferred[None] | None = None

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Find the destinations that missed events (catching up), then read the
        stream: in that order, so no live transaction to a destination that is behind
        acknowledges a position past events it missed."""
        self._started = True
        self._starting = defer.ensureDeferred(self._start())

    async def ready(self) -> None:
        """Wait until started (the destinations behind found, the stream being read)."""
        if self._starting is not None:
            await self._starting

    async def _start(self) -> None:
        while self._started:
            try:
                await self._wake_behind()
            except defer.CancelledError:
                raise
            except Exception:
                logger.exception("Could not find the destinations to catch up; retrying")
                await task.deferLater(self._reactor, START_RETRY_S, lambda: None)
                continue
            self.consumer.start()
            self._schedule_prune()
            return

    async def stop(self) -> None:
        self._started = False
        starting, self._starting = self._starting, None
        if starting is not None and not starting.called:
            starting.cancel()
            try:
                await starting
            except defer.CancelledError:
                pass
        for call in self._waking:
            if call.active():
                call.cancel()
        self._waking.clear()
        if self._prune_timer is not None and self._prune_timer.active():
            self._prune_timer.cancel()
        self._prune_timer = None
        if self._pruning is not None:
            await self._pruning  # never fails: _prune logs
        await self.consumer.stop()
        for queue in list(self._queues.values()):
            await queue.stop()
        self._queues.clear()
        await self._deps.acked.stop()

    # --- what the server hands over ------------------------------------------------------

    def notify_new_events(self) -> None:
        """New events may be visible: read the stream now rather than at the next poll."""
        self.consumer.poke()

    def on_new_event(self, _event: Event, _position: int) -> None:
        """``pipeline.on_new_event``."""
        self.consumer.poke()

    def send_edu(
        self,
        destination: str,
        edu_type: str,
        content: Mapping[str, Any],
        *,
        coalesce_key: Hashable | None = None,
    ) -> None:
        """An ephemeral EDU (typing, presence, receipts) for the next transaction; a
        later one with the same ``(edu_type, coalesce_key)`` replaces it while unsent.
        Dropped for a destination that is unreachable now."""
        if not self._sendable(destination):
            return
        self._queue(destination).queue_edu(Edu(edu_type, content), coalesce_key)

    async def send_durable_edu(
        self, destination: str, edu_type: str, content: Mapping[str, Any]
    ) -> None:
        """An EDU that must arrive (to-device, device list and signing key updates):
        stored before this returns, deleted once a transaction carrying it is
        acknowledged (kept across restarts and outages)."""
        await self.send_durable_edus([destination], edu_type, content)

    async def send_durable_edus(
        self, destinations: Collection[str], edu_type: str, content: Mapping[str, Any]
    ) -> None:
        """:meth:`send_durable_edu` to several destinations, stored in one transaction
        (a device list update for every server sharing a room with the user)."""
        # Stored even before start (which picks up every destination with rows).
        sendable = sorted({d for d in destinations if self._is_remote_allowed(d)})
        if not sendable:
            return
        await self._store.add_edus(sendable, edu_type, content, self._clock.time_msec())
        if self._started:
            for destination in sendable:
                self._queue(destination).check_durable_edus()

    def allows(self, destination: str) -> bool:
        """Whether durable EDUs may be stored for ``destination`` (another server,
        within ``federation_domain_whitelist``): for callers that store them in their
        own transaction (``storage.federation_outbound.add_edus_txn``)."""
        return self._is_remote_allowed(destination)

    def durable_edus_stored(self, destinations: Collection[str]) -> None:
        """Durable EDUs for ``destinations`` were committed by another store's
        transaction (``add_edus_txn``): send them now (before start, start-up finds
        every destination with stored EDUs)."""
        if not self._started:
            return
        for destination in sorted(set(destinations)):
            if self._is_remote_allowed(destination):
                self._queue(destination).check_durable_edus()

    async def send_on_behalf_of(self, event_id: str, origin: str) -> None:
        """Pass the remote event ``event_id`` on to the room's other servers once it
        is visible (a join, leave or knock ``origin`` made through us).  Call it
        before the event is persisted: stored, so a restart in between loses nothing."""
        await self._recipients.forward(event_id, origin, self._clock.time_msec())

    def forget_room_servers(self, room_nid: int) -> None:
        """The room's membership index changed without events (a partial-state
        room was completed): count its servers afresh."""
        self._recipients.forget_room(room_nid)

    def wake_destination(self, destination: str) -> None:
        """Try ``destination`` now, backoff or not (it just contacted us, or answered)."""
        if not self._sendable(destination):
            return
        queue = self._queues.get(destination)
        # No queue: nothing to send (a queue is only forgotten when it has nothing
        # left, and start-up makes one for every destination behind).
        if queue is not None:
            queue.wake()

    # --- from the events stream ----------------------------------------------------------

    async def _handle(self, batch: Sequence[StreamedEvent]) -> None:
        found = await self._recipients.for_batch(batch)
        if not found:
            return
        queued = [
            QueuedPdu(destination, room_nid, streamed.position)
            for streamed, room_nid, destinations in found
            for destination in sorted(destinations)
        ]
        await self._store.record_queued(queued)
        per_destination: dict[str, list[PendingPdu]] = {}
        for streamed, _, destinations in found:
            pdu = PendingPdu(streamed.position, streamed.event)
            for destination in destinations:
                per_destination.setdefault(destination, []).append(pdu)
        if not self._started:
            return
        for index, (destination, pdus) in enumerate(sorted(per_destination.items())):
            if index and index % QUEUES_PER_TURN == 0:
                # Let the reactor serve what arrived (see QUEUES_PER_TURN).
                await task.deferLater(self._io_reactor, 0, lambda: None)
                if not self._started:
                    return  # stopped meanwhile: the table says what each missed
            self._queue(destination).queue_pdus(pdus)

    # --- forgetting the remote events passed on -----------------------------------------

    def _schedule_prune(self) -> None:
        if self._started and self._prune_timer is None and self._pruning is None:
            self._prune_timer = self._reactor.callLater(self._prune_interval_s, self._begin_prune)

    def _begin_prune(self) -> None:
        self._prune_timer = None
        if self._started:
            self._pruning = defer.ensureDeferred(self._prune())
            self._pruning.addBoth(self._pruned)

    def _pruned(self, _result: object) -> None:
        self._pruning = None
        self._schedule_prune()

    async def _prune(self) -> None:
        """Drop the ``federation_forwarded_events`` rows no one needs any more: the
        consumer's stored position is past their events (even after a crash it
        never reads them again: the position in memory may be ahead of it) and every
        destination acknowledged past them (catch-up reads only what is past a
        destination's acknowledged position).  Written positions only: what the
        acknowledgements in memory add is at most a write delay ahead."""
        try:
            handled = self.consumer.stored_position
            if handled is not None:
                pruned = await self._store.prune_forwarded(handled)
                if pruned:
                    logger.debug("Forgot %d remote events passed on", pruned)
        except Exception:
            logger.exception("Could not prune the remote events passed on; trying later")

    # --- queues --------------------------------------------------------------------------

    def _sendable(self, destination: str) -> bool:
        return self._started and self._is_remote_allowed(destination)

    def _is_remote_allowed(self, destination: str) -> bool:
        return destination != self._server_name and self._allowed(destination)

    def _queue(self, destination: str) -> DestinationQueue:
        queue = self._queues.get(destination)
        if queue is None:
            queue = DestinationQueue(destination, self._deps, self._forget)
            self._queues[destination] = queue
        return queue

    def _forget(self, queue: DestinationQueue) -> None:
        if self._queues.get(queue.destination) is queue:
            del self._queues[queue.destination]

    async def _wake_behind(self) -> None:
        """At start: destinations that missed events or have durable EDUs waiting."""
        behind = await self._store.destinations_behind()
        with_edus = await self._store.destinations_with_edus()
        destinations = sorted(set(behind) | set(with_edus))
        if destinations:
            logger.info("Catching up %d destinations", len(destinations))
        for index, destination in enumerate(destinations):
            if not self._sendable(destination):
                continue
            queue = self._queue(destination)
            if destination in behind:
                queue.start_catching_up()
            delay = (index // START_WAKE_BATCH) * START_WAKE_INTERVAL_S
            if delay == 0:
                self._wake_for_catch_up(destination)
            else:
                call = self._reactor.callLater(delay, self._wake_for_catch_up, destination)
                self._waking.append(call)

    def _wake_for_catch_up(self, destination: str) -> None:
        queue = self._queues.get(destination)
        if queue is None or not self._started:
            return
        # Not :meth:`DestinationQueue.wake`: a destination still backing off waits.
        queue.check_durable_edus()
