"""The queue of one destination server: one transaction in flight, nothing lost.

**Live.**  PDUs arrive from the sender's stream consumer in stream order (already
recorded in ``federation_outbound_rooms``), EDUs from :meth:`queue_edu` (ephemeral,
in memory; a later one with the same ``(edu_type, coalesce_key)`` replaces an unsent
earlier one) and from the durable EDU table.  Each transaction takes up to 50 PDUs,
then durable EDUs, then ephemeral ones, up to 100 EDUs and ~4 MiB in all
(``MAX_BODY_BYTES``: receivers cap request bodies); the next is built when the
previous one is answered, so nothing waits longer than the transaction in flight.

**Failure** (no answer, 5xx, 408, 429, or the destination backing off): the failed
transaction is kept and sent again first, under the same ID, as the spec asks.  PDUs
waiting in memory are dropped — the database says what the destination missed — and
so are ephemeral EDUs (typing, presence and receipts go stale; Synapse drops them
too), and the queue waits for the backoff to expire (``DestinationBackoff``), for
:meth:`wake` (the destination contacted us, or answered someone else), then catches up.

**Catch-up**: the rooms with events the destination missed come from
``federation_outbound_rooms`` (past its acknowledged position, oldest first, a few
rooms per transaction).  In a room where few events were sent since
(:data:`CATCH_UP_ALL_UP_TO`), every local one that was due to the destination goes
(who was due is decided as the live path does, walking the room's membership from
the acknowledged position, so nothing from before its servers joined leaks); in a
busier room only the newest, and the remote fetches the rest it lacks with
``/get_missing_events``, which applies history visibility for it (Synapse sends only
the newest, always).  Live sending resumes when nothing is left; PDUs the consumer
hands over meanwhile only set a flag that makes catch-up look once more, so an event
written while the last look ran is not missed.

**Rejected** (any other non-2xx answer: a 401 because the remote could not fetch our
key, a 413, a proxy's 404...): nothing is acknowledged or deleted — only a 2xx
answer moves the acknowledged position and deletes durable EDU rows.  The failure is
recorded in the backoff (the client counts a 4xx as the server being up), the
transaction is forgotten rather than resent as it was (it may be what was refused),
and once the backoff expires the queue catches up from the table like after an
outage, durable EDUs included.  Synapse likewise never moves its acknowledged
position on an error answer.

**Not allowed** (the destination is outside ``federation_domain_whitelist`` or is
us): logged, and the transaction counts as delivered — it can never be sent.

spec: server-server-api.md#transactions, data/api/server-server/transactions.yaml
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from enum import Enum
from typing import Any, Protocol

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from federation.client.errors import (
    DestinationNotAllowed,
    FederationRequestError,
    FederationUnreachable,
)
from federation.sender.acks import AckedPositions
from federation.sender.recipients import EventRecipients
from federation.sender.transaction import (
    MAX_BODY_BYTES,
    MAX_EDUS,
    MAX_PDUS,
    Edu,
    OutboundTransaction,
    PendingPdu,
    TransactionIds,
    log_pdu_errors,
)
from homeserver.clock import Clock
from homeserver.storage.events import EventStore
from homeserver.storage.federation_outbound import FederationOutboundStore, MissedRoom
from homeserver.streams.consumer import StreamedEvent

logger = logging.getLogger(__name__)

#: Rooms caught up per transaction.  The remote may fetch missing events for each
#: PDU before answering: a few rooms at a time keeps a transaction well within the
#: request timeout (Synapse sends one room per transaction for this reason).
CATCH_UP_ROOMS = 5
#: A room with at most this many events since the acknowledged position has all its
#: due events caught up; a busier one only its newest.
CATCH_UP_ALL_UP_TO = 10
#: Ephemeral EDUs kept for a destination; past it the oldest goes.
MAX_PENDING_EDUS = 1_000
#: PDUs kept in memory for a destination that is slower than the stream (a backlog
#: read after a long stop, a slow server); past it the queue catches up from the
#: table instead, so memory stays bounded.
MAX_PENDING_PDUS = 5_000
#: Wait after a failure when the backoff has no time for us (it counts only some
#: failures; an unexpected error is not one of them).
FALLBACK_RETRY_S = 60.0
#: HTTP statuses after which the same transaction is sent again (besides 5xx).
_RETRY_STATUSES = frozenset({408, 429})


class TransactionClient(Protocol):
    """The outbound federation client (``federation.client.http.FederationHttpClient``)."""

    async def put_json(
        self,
        destination: str,
        path: str,
        body: object,
        *,
        timeout: float = ...,  # noqa: ASYNC109 (a Twisted coroutine)
        ignore_backoff: bool = ...,
    ) -> Any: ...


class Backoff(Protocol):
    """``federation.client.backoff.DestinationBackoff``."""

    async def is_backing_off(self, destination: str) -> int | None: ...

    async def record_failure(self, destination: str) -> None: ...


@attrs.frozen
class QueueDeps:
    """What every destination queue shares."""

    server_name: str
    client: TransactionClient
    backoff: Backoff
    store: FederationOutboundStore
    events: EventStore
    recipients: EventRecipients
    clock: Clock
    reactor: IReactorTime
    ids: TransactionIds
    #: Bounds the transactions in flight across all destinations.
    slots: defer.DeferredSemaphore
    #: Acknowledged positions, written behind in batches (acks.py).
    acked: AckedPositions
    timeout_s: float = 60.0


class Outcome(Enum):
    DELIVERED = "delivered"
    REFUSED = "refused"
    REJECTED = "rejected"
    FAILED = "failed"


class DestinationQueue:
    def __init__(
        self, destination: str, deps: QueueDeps, on_idle: Callable[[DestinationQueue], None]
    ) -> None:
        self.destination = destination
        self._deps = deps
        self._on_idle = on_idle
        self._pdus: list[PendingPdu] = []
        #: Ephemeral EDUs in the order queued; coalesced ones under their key.
        self._edus: dict[Hashable, Edu] = {}
        self._edu_serial = 0
        #: Durable EDUs may be waiting in the table; bumped by each one added.
        self._durable_pending = False
        self._durable_generation = 0
        #: A transaction that failed: sent again, as it was, before anything else.
        self._retry: OutboundTransaction | None = None
        self._catching_up = False
        self._new_during_catch_up = False
        #: The destination's acknowledged position, once read (catch-up reads it).
        self._acked: int | None = None
        self._running: defer.Deferred[None] | None = None
        self._again = False
        #: Waiting out a failure: new data does not start a send until it fires.
        self._timer: IDelayedCall | None = None
        #: The next attempt ignores the backoff (:meth:`wake`).
        self._force = False
        self._stopped = False

    # --- what callers hand over ----------------------------------------------------------

    def queue_pdus(self, pdus: Sequence[PendingPdu]) -> None:
        """PDUs for this destination, in stream order, already recorded in the table."""
        if self._catching_up:
            # Catch-up will read them from the table; make it look once more.
            self._new_during_catch_up = True
        else:
            self._pdus.extend(pdus)
            if len(self._pdus) > MAX_PENDING_PDUS:
                logger.info("Destination %s is behind: catching up instead", self.destination)
                self.start_catching_up()
        self._poke()

    def queue_edu(self, edu: Edu, coalesce_key: Hashable | None) -> None:
        if self._is_down():
            logger.debug(
                "Dropping %s EDU for %s: it is unreachable", edu.edu_type, self.destination
            )
            return
        if coalesce_key is None:
            self._edu_serial += 1
            key: Hashable = ("serial", self._edu_serial)
        else:
            key = ("keyed", edu.edu_type, coalesce_key)
            # A replacement goes to the end: it is the newest news.
            self._edus.pop(key, None)
        self._edus[key] = edu
        while len(self._edus) > MAX_PENDING_EDUS:
            del self._edus[next(iter(self._edus))]
        self._poke()

    def check_durable_edus(self) -> None:
        """Durable EDUs may be waiting in the table (one was just added, or at start)."""
        self._durable_pending = True
        self._durable_generation += 1
        self._poke()

    def start_catching_up(self) -> None:
        """The table may hold events this destination missed (at start-up)."""
        self._pdus.clear()
        self._catching_up = True

    def wake(self) -> None:
        """Try now, even if backing off (the destination just showed it is up).
        Nothing to do unless the queue is waiting out a failure."""
        if not self._is_down():
            return
        self._force = True
        self._cancel_timer()
        self._poke()

    async def stop(self) -> None:
        """Stop sending; a transaction under way is abandoned (the table and the
        durable EDU rows still say what it carried)."""
        self._stopped = True
        self._cancel_timer()
        running = self._running
        if running is not None:
            running.cancel()
            try:
                await running
            except defer.CancelledError:
                pass

    @property
    def idle(self) -> bool:
        """Nothing to send, nothing to remember: the queue may be forgotten."""
        return (
            self._running is None
            and self._timer is None
            and self._retry is None
            and not self._catching_up
            and not self._pdus
            and not self._edus
            and not self._durable_pending
        )

    # --- the sending loop ----------------------------------------------------------------

    def _is_down(self) -> bool:
        return self._timer is not None or self._retry is not None

    def _poke(self) -> None:
        if self._stopped or self._timer is not None:
            return
        if self._running is not None:
            self._again = True
            return
        running = defer.ensureDeferred(self._run())
        # A run with nothing to do can end before ensureDeferred returns (cached
        # backoff state, nothing queued): then it is not running any more.
        if not running.called:
            self._running = running

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._poke()

    async def _run(self) -> None:
        try:
            while not self._stopped:
                self._again = False
                if not self._force:
                    retry_at = await self._deps.backoff.is_backing_off(self.destination)
                    if retry_at is not None:
                        self._enter_down()
                        self._wait_until(retry_at)
                        return
                txn = self._retry or await self._next_transaction()
                if txn is None:
                    if self._again:
                        continue
                    self._force = False
                    return
                if not txn.pdus and not txn.edus:
                    # Catch-up passed over events it could not load: nothing to send.
                    await self._complete(txn)
                    continue
                outcome = await self._send(txn)
                if outcome is Outcome.FAILED or outcome is Outcome.REJECTED:
                    # A failed transaction is sent again as it was; a rejected one is
                    # built again by catch-up from the tables (durable EDUs re-read).
                    self._retry = txn if outcome is Outcome.FAILED else None
                    if outcome is Outcome.REJECTED:
                        self._durable_pending = True
                    self._enter_down()
                    retry_at = await self._deps.backoff.is_backing_off(self.destination)
                    self._wait_until(retry_at)
                    return
                await self._complete(txn)
        except defer.CancelledError:
            raise
        except Exception:
            logger.exception("Sending to %s failed; retrying later", self.destination)
            self._enter_down()
            self._wait_until(None)
        finally:
            self._running = None
            if self.idle and not self._stopped:
                self._on_idle(self)

    def _enter_down(self) -> None:
        """Unreachable: what is in memory goes; the table keeps what matters."""
        self._pdus.clear()
        self._edus.clear()
        self._catching_up = True

    def _wait_until(self, retry_at: int | None) -> None:
        if self._stopped:
            return
        if retry_at is None:
            delay = FALLBACK_RETRY_S
        else:
            delay = max(0.0, (retry_at - self._deps.clock.time_msec()) / 1000)
        self._cancel_timer()
        self._timer = self._deps.reactor.callLater(delay, self._on_timer)

    async def _send(self, txn: OutboundTransaction) -> Outcome:
        deps = self._deps
        body = txn.body(deps.server_name, deps.clock.time_msec())
        force, self._force = self._force, False
        rejected = False
        await deps.slots.acquire()
        try:
            response = await deps.client.put_json(
                self.destination, txn.path, body, timeout=deps.timeout_s, ignore_backoff=force
            )
        except DestinationNotAllowed as error:
            logger.info("Not sending transaction %s: %s", txn.txn_id, error)
            return Outcome.REFUSED
        except FederationUnreachable as error:
            logger.info(
                "Transaction %s to %s failed (%d PDUs): %s",
                txn.txn_id,
                self.destination,
                len(txn.pdus),
                error,
            )
            return Outcome.FAILED
        except FederationRequestError as error:
            if error.status >= 500 or error.status in _RETRY_STATUSES:
                logger.info(
                    "Transaction %s to %s: HTTP %d; will retry",
                    txn.txn_id,
                    self.destination,
                    error.status,
                )
                return Outcome.FAILED
            logger.warning(
                "Transaction %s to %s rejected (HTTP %d %s): %d PDUs, %d EDUs; "
                "catching up after backing off",
                txn.txn_id,
                self.destination,
                error.status,
                error.errcode,
                len(txn.pdus),
                len(txn.edus),
            )
            rejected = True
        finally:
            deps.slots.release()
        if rejected:
            await deps.backoff.record_failure(self.destination)
            return Outcome.REJECTED
        log_pdu_errors(self.destination, txn.txn_id, response)
        return Outcome.DELIVERED

    async def _complete(self, txn: OutboundTransaction) -> None:
        store = self._deps.store
        if txn.acks_up_to is not None:
            # Not awaited: written with other destinations' positions (acks.py).
            self._deps.acked.record(self.destination, txn.acks_up_to)
            self._acked = (
                txn.acks_up_to if self._acked is None else max(self._acked, txn.acks_up_to)
            )
        if txn.durable_ids:
            await store.delete_edus(txn.durable_ids)
        self._retry = None

    # --- building the next transaction ---------------------------------------------------

    async def _next_transaction(self) -> OutboundTransaction | None:
        pdus: list[PendingPdu] = []
        acks_up_to: int | None = None
        if self._catching_up:
            pdus, acks_up_to = await self._catch_up_pdus()
        if not self._catching_up and acks_up_to is None:
            pdus = self._take_live_pdus()
            acks_up_to = pdus[-1].position if pdus else None
        used = sum(pdu.encoded_size() for pdu in pdus)
        edus = await self._take_edus(MAX_BODY_BYTES - used, first_item=not pdus)
        if acks_up_to is None and not edus:
            return None
        return OutboundTransaction(self._deps.ids.next(), pdus, edus, acks_up_to)

    def _take_live_pdus(self) -> list[PendingPdu]:
        if self._acked is not None:
            # Already sent by catch-up (or a replayed consumer batch).
            self._pdus = [pdu for pdu in self._pdus if pdu.position > self._acked]
        count, used = 0, 0
        for pdu in self._pdus[:MAX_PDUS]:
            used += pdu.encoded_size()
            if count and used > MAX_BODY_BYTES:
                break
            count += 1
        taken, self._pdus = self._pdus[:count], self._pdus[count:]
        if self._pdus:
            self._again = True
        return taken

    async def _catch_up_pdus(self) -> tuple[list[PendingPdu], int | None]:
        """The next rooms' missed events, and the position they cover; ends catch-up
        (``([], None)``) when nothing is missed."""
        deps = self._deps
        if self._acked is None:
            self._acked = await deps.acked.get(self.destination)
        if self._acked is None:
            # Nothing was ever queued for this destination: nothing to catch up.
            self._catching_up = False
            return [], None
        while True:
            self._new_during_catch_up = False
            missed = await deps.store.missed_rooms(self.destination, self._acked, CATCH_UP_ROOMS)
            if missed:
                break
            if not self._new_during_catch_up:
                self._catching_up = False
                logger.info("Destination %s is caught up", self.destination)
                return [], None
        pdus: list[PendingPdu] = []
        used = 0
        covered = missed[0].position
        for room in missed:
            room_pdus = await self._missed_in_room(room, self._acked)
            room_bytes = sum(pdu.encoded_size() for pdu in room_pdus)
            if pdus and (
                len(pdus) + len(room_pdus) > MAX_PDUS or used + room_bytes > MAX_BODY_BYTES
            ):
                break
            pdus.extend(room_pdus)
            used += room_bytes
            covered = room.position
        pdus.sort(key=lambda pdu: pdu.position)
        return pdus, covered

    async def _missed_in_room(self, room: MissedRoom, acked: int) -> list[PendingPdu]:
        deps = self._deps
        rows = await deps.store.room_events_between(
            room.room_nid, acked, room.position, CATCH_UP_ALL_UP_TO + 1
        )
        if len(rows) > CATCH_UP_ALL_UP_TO:
            rows = [(room.position, room.event_id)]
        loaded = await deps.events.get_events([event_id for _, event_id in rows])
        if len(rows) == 1:
            return [PendingPdu(p, loaded[e]) for p, e in rows if e in loaded]
        events = [StreamedEvent(p, loaded[e]) for p, e in rows if e in loaded]
        due = await deps.recipients.due_to(self.destination, room.room_nid, acked, events)
        if room.event_id in loaded and all(s.event.event_id != room.event_id for s in due):
            # The live path found it due when it was queued: that stands.
            due.append(StreamedEvent(room.position, loaded[room.event_id]))
        return [PendingPdu(streamed.position, streamed.event) for streamed in due]

    async def _take_edus(self, budget: int, *, first_item: bool) -> list[Edu]:
        """Durable EDUs, then ephemeral ones, up to :data:`MAX_EDUS` and ``budget``
        bytes (the first item of an otherwise empty transaction whatever its size)."""
        edus: list[Edu] = []
        used = 0

        def fits(edu: Edu) -> bool:
            nonlocal used
            size = edu.encoded_size()
            if used + size > budget and (edus or not first_item):
                return False
            used += size
            return True

        if self._durable_pending:
            generation = self._durable_generation
            stored = await self._deps.store.pending_edus(self.destination, MAX_EDUS)
            all_fit = True
            for row in stored:
                edu = Edu(row.edu_type, row.content, row.edu_id)
                if not fits(edu):
                    # Left in the table: the next transaction reads it again.
                    all_fit = False
                    break
                edus.append(edu)
            if all_fit and len(stored) < MAX_EDUS and generation == self._durable_generation:
                self._durable_pending = False
        while self._edus and len(edus) < MAX_EDUS:
            key = next(iter(self._edus))
            if not fits(self._edus[key]):
                break
            edus.append(self._edus.pop(key))
        if self._edus or self._durable_pending:
            self._again = True
        return edus
