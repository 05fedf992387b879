"""The pusher engine: from the events stream to each pusher's queue, and from the queue
to the pusher's kind.

**Queueing.**  An :class:`~homeserver.streams.consumer.EventStreamConsumer` named
``pushers`` reads the events stream from its own stored position (so it can move to a
process of its own).  For each batch: events older than a day (by
``origin_server_ts``) are skipped — the consumer keeps its position while
``push.enabled`` is false, and a push about a day-old message helps nobody.  The
recipients of an event are the local users joined to its room who have pushers (one
query per batch, skipped when nobody on the server has a pusher) and whose join is not
later in the stream than the event (membership is the room's current one: a user who
joined after an event must not be pushed its content), plus the target of an invite
(who is not joined yet; ``.m.rule.invite_for_me``).  Not the sender, not users
ignoring the sender.  Each recipient's push rules run with the room's facts, read once
per room for the batch (power levels, member count, each recipient's display name).
Every ``notify`` becomes one ``pusher_queue`` row per pusher of that user, with the
matched rule's actions as they are (custom tweaks included), all written in one
transaction before the consumer's position moves; a replayed batch inserts nothing new.

**Delivering.**  Each pusher with queued rows is handed to its kind
(:meth:`~homeserver.pushers.kinds.PusherKind.deliver`), one delivery at a time per
pusher, oldest first, at most ``kind.max_pending`` at a time, and at most
``push.max_concurrent_deliveries`` deliveries under way on the server (a message in a
big room must not open a connection per member at once).  The
:class:`~homeserver.pushers.kinds.DeliveryOutcome` drives the queue: rows up to
``delivered_up_to`` are deleted (after the gateway answered, so a crash repeats a
notification rather than losing it); ``failed`` schedules a retry with exponential
backoff (1 s doubling to 1 h, ±20 % jitter), recorded in the pusher's row so a restart
keeps it, and trims the queue: every notification queued a day ago or more goes, and
all but the newest :data:`MAX_QUEUED` (so a gateway that stays down costs a bounded
queue); ``retry_in_ms`` asks again later; ``remove_pusher`` deletes the pusher and its
queue.  A pusher removed while its delivery is under way (logout, ``append: false``
giving its pushkey to another user) has that delivery cancelled.  At start every
pusher with queued rows is scheduled.

**Badges.**  When a user's read receipt moves, their pushers of kinds registered with
``badge_updates`` get the new unread count (``PusherKind.badge_changed``) if it differs
from the last one sent and no delivery for the pusher is under way or due (the next
delivery carries the count anyway); the count is not computed when no such pusher is
waiting for it.

spec: client-server-api/modules/push.md#server-behaviour, push-gateway-api.md
("If the endpoint returns an HTTP error code, the homeserver SHOULD retry for a
reasonable amount of time using exponential backoff")
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.push.handler import PushRulesHandler
from homeserver.push.room_facts import RoomFacts, read_room_facts
from homeserver.pushers.kinds import DeliveryOutcome, PendingNotification, Pusher
from homeserver.pushers.registry import PusherKinds
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import EventStore
from homeserver.storage.pushers import DeliveryState, PusherStore, QueuedNotification, Recipient
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.streams.consumer import EventStreamConsumer, StreamedEvent

logger = logging.getLogger(__name__)

#: What the ``http`` and ``webpush`` kinds take per delivery (``max_pending``).
DELIVERY_BATCH = 20
#: Deliveries under way at once on the server (``push.max_concurrent_deliveries``).
MAX_CONCURRENT_DELIVERIES = 50
#: A pusher's queue is trimmed to this many after a failure.
MAX_QUEUED = 1_000
#: An event older than this (``origin_server_ts``) when the engine reads it is not pushed.
MAX_EVENT_AGE_MS = 24 * 3_600_000
#: Backoff after the first failure, and its ceiling.
FIRST_RETRY_MS = 1_000
MAX_RETRY_MS = 3_600_000
#: Spread of each retry delay (±), so pushers of one gateway do not retry in step.
JITTER = 0.2
#: A notification queued this long ago is dropped at the next failure.
GIVE_UP_MS = 24 * 3_600_000


@attrs.frozen
class EngineDeps:
    """What the engine reads besides its own store."""

    events: EventStore
    state: RoomStateReader
    push_rules: PushRulesHandler
    #: Whom a user ignores (``AccountDataHandler.ignored_users``).
    ignored_users: Callable[[str], Awaitable[frozenset[str]]]
    #: The user's badge count (``UnreadBadge.unread``).
    unread: Callable[[str], Awaitable[int]]
    #: Deletes a dead pusher (``PushersHandler.remove``, which tells the engine).
    remove_pusher: Callable[[int], Awaitable[None]]


class PusherEngine:
    def __init__(
        self,
        *,
        store: PusherStore,
        consumers: StreamConsumerStore,
        deps: EngineDeps,
        kinds: PusherKinds,
        clock: Clock,
        reactor: IReactorTime,
        jitter_delay_ms: int | None = None,
        max_concurrent_deliveries: int = MAX_CONCURRENT_DELIVERIES,
        max_queued: int = MAX_QUEUED,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._deps = deps
        self._kinds = kinds
        self._clock = clock
        self._reactor = reactor
        self._jitter_delay_ms = jitter_delay_ms
        self._rng = rng or random.Random()
        self._max_queued = max_queued
        #: Bounds the deliveries in flight across every pusher.
        self._slots = defer.DeferredSemaphore(max_concurrent_deliveries)
        self.consumer = EventStreamConsumer(
            name="pushers",
            store=consumers,
            events=deps.events,
            reactor=reactor,
            handle=self._handle,
            start_from_beginning=False,
        )
        #: Users who may have pushers: a user is added when a pusher is set and stays
        #: until restart (a stale entry only costs the recipients query).
        self._users: set[str] = set()
        #: Pusher ID -> its delivery under way; IDs with more queued since it began.
        self._running: dict[int, defer.Deferred[None]] = {}
        self._again: set[int] = set()
        #: Pusher ID -> the timer of its next attempt (a retry, or a jitter delay).
        self._timers: dict[int, IDelayedCall] = {}
        #: Pusher ID -> the badge count it was last sent by ``badge_changed``.
        self._badges: dict[int, int] = {}
        self._stopped = True

    # --- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._stopped = False
        self._users = await self._store.user_ids_with_pushers()
        self.consumer.start()
        now = self._clock.time_msec()
        for pusher_id, next_ts in (await self._store.pushers_with_pending()).items():
            self._schedule(pusher_id, max(0, (next_ts or now) - now))

    async def stop(self) -> None:
        self._stopped = True
        await self.consumer.stop()
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()
        # A delivery cut short leaves its rows queued (they go only once answered),
        # so shutdown need not wait for a slow gateway.
        for delivery in list(self._running.values()):
            delivery.cancel()

    def poke(self) -> None:
        """New events may be visible (``pipeline.on_new_event``)."""
        self.consumer.poke()

    # --- pushers come and go -----------------------------------------------------------

    def pusher_set(self, pusher: Pusher) -> None:
        self._users.add(pusher.user_id)
        self._badges.pop(pusher.pusher_id, None)

    def pushers_removed(self, pushers: Sequence[Pusher]) -> None:
        for pusher in pushers:
            timer = self._timers.pop(pusher.pusher_id, None)
            if timer is not None and timer.active():
                timer.cancel()
            self._badges.pop(pusher.pusher_id, None)
            self._again.discard(pusher.pusher_id)
            # Its pushkey may now be another user's: not one more push to it.
            delivery = self._running.get(pusher.pusher_id)
            if delivery is not None:
                delivery.cancel()

    # --- queueing ----------------------------------------------------------------------

    async def _handle(self, batch: Sequence[StreamedEvent]) -> None:
        if not self._users or not batch:
            return
        oldest = self._clock.time_msec() - MAX_EVENT_AGE_MS
        fresh = [s for s in batch if s.event.origin_server_ts >= oldest]
        if not fresh:
            return
        invites = await self._invites(fresh)
        recipients, member_counts = await self._store.room_recipients(
            {streamed.event.room_id for streamed in fresh},
            also_count={fresh[i].event.room_id for i in invites},
        )
        if not recipients and not invites:
            return
        users: dict[str, set[str]] = {room: set(found) for room, found in recipients.items()}
        for index, (user_id, _) in invites.items():
            users.setdefault(fresh[index].event.room_id, set()).add(user_id)
        facts = {room: await self._room_facts(room, sorted(found)) for room, found in users.items()}
        rows: list[QueuedNotification] = []
        for index, streamed in enumerate(fresh):
            event = streamed.event
            room_facts = facts.get(event.room_id)
            if not room_facts:
                continue
            targets = _targets(recipients.get(event.room_id, {}), streamed.position)
            if index in invites:
                invitee, pusher_ids = invites[index]
                targets.setdefault(invitee, pusher_ids)
            joined = member_counts.get(event.room_id, 0)
            for user_id, pusher_ids in targets.items():
                user_facts = room_facts.get(user_id)
                if user_facts is None:
                    continue
                actions = await self._evaluate(event, user_id, user_facts, joined)
                if actions is None:
                    continue
                rows.extend(
                    QueuedNotification(
                        pusher_id, streamed.position, event.event_id, event.room_id, actions
                    )
                    for pusher_id in pusher_ids
                )
        if not rows:
            return
        await self._store.enqueue(rows, now=self._clock.time_msec())
        for pusher_id in sorted({row.pusher_id for row in rows}):
            self._schedule(pusher_id, self._first_delay_ms())

    async def _invites(
        self, batch: Sequence[StreamedEvent]
    ) -> dict[int, tuple[str, tuple[int, ...]]]:
        """Index in ``batch`` -> (invitee, their pusher IDs) of the invites of users
        with pushers: they are not joined, so not among the room's recipients."""
        invites: dict[int, tuple[str, tuple[int, ...]]] = {}
        for index, streamed in enumerate(batch):
            event = streamed.event
            invitee = event.state_key
            if event.membership != "invite" or invitee is None or invitee not in self._users:
                continue
            pusher_ids = await self._store.pusher_ids_of(invitee)
            if pusher_ids:
                invites[index] = (invitee, tuple(pusher_ids))
        return invites

    async def _room_facts(self, room_id: str, users: Sequence[str]) -> dict[str, RoomFacts]:
        """Each recipient's facts about the room: the power levels read once, the
        recipients' member events (display names) in one read."""
        state = self._deps.state
        room = await state.room(room_id)
        if room is None or not users:
            return {}
        shared = await read_room_facts(state, users[0], room.room_version, room.current_state_group)
        members = await state.events_for_state(
            await state.state_ids_for_group(room.current_state_group),
            [("m.room.member", user_id) for user_id in users],
        )
        facts = {}
        for user_id in users:
            member = members.get(("m.room.member", user_id))
            name = member.content.get("displayname") if member is not None else None
            facts[user_id] = attrs.evolve(
                shared, display_name=name if isinstance(name, str) else None
            )
        return facts

    async def _evaluate(
        self, event: Event, user_id: str, facts: RoomFacts, joined_members: int
    ) -> list[Any] | None:
        """The actions of a notifying event for ``user_id``, or None."""
        if event.sender == user_id or event.sender in await self._deps.ignored_users(user_id):
            return None
        evaluator = await self._deps.push_rules.evaluator(user_id)
        context = facts.context(user_id, event.room_id, event.sender, joined_members)
        actions = evaluator.evaluate(event.pdu, context)
        # The rule's actions as they are: a custom ``set_tweak`` reaches the gateway.
        return list(actions.raw) if actions.notify else None

    def _first_delay_ms(self) -> int:
        if not self._jitter_delay_ms:
            return 0
        return self._rng.randrange(self._jitter_delay_ms)

    # --- delivering --------------------------------------------------------------------

    def _schedule(self, pusher_id: int, delay_ms: int = 0) -> None:
        """Deliver the pusher's queue after ``delay_ms``, unless a delivery is under way
        (it will look again) or an attempt is already due (a retry keeps its backoff)."""
        if self._stopped:
            return
        if pusher_id in self._running:
            self._again.add(pusher_id)
            return
        timer = self._timers.get(pusher_id)
        if timer is not None and timer.active():
            return
        if delay_ms > 0:
            self._timers[pusher_id] = self._reactor.callLater(
                delay_ms / 1000, self._on_timer, pusher_id
            )
            return
        self._start(pusher_id)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """One of the deliveries allowed in flight at once."""
        await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    def _on_timer(self, pusher_id: int) -> None:
        self._timers.pop(pusher_id, None)
        self._schedule(pusher_id)

    def _start(self, pusher_id: int) -> None:
        delivery = defer.ensureDeferred(self._deliver_all(pusher_id))
        self._running[pusher_id] = delivery

        def done(_: object) -> None:
            self._running.pop(pusher_id, None)
            if pusher_id in self._again:
                self._again.discard(pusher_id)
                self._schedule(pusher_id)

        delivery.addBoth(done)

    async def _deliver_all(self, pusher_id: int) -> None:
        try:
            while not self._stopped:
                self._again.discard(pusher_id)
                if not await self._deliver_once(pusher_id):
                    return
        except defer.CancelledError:
            # Shutdown, or the pusher was removed: its rows stay queued (or went with
            # it); nothing failed.
            return
        except Exception:
            logger.exception("pusher %d: delivery failed; retrying later", pusher_id)
            self._retry_later(pusher_id, MAX_RETRY_MS // 60)

    async def _deliver_once(self, pusher_id: int) -> bool:
        """One delivery; True if the queue should be looked at again at once."""
        pusher = await self._store.get_pusher(pusher_id)
        if pusher is None:
            return False
        kind = self._kinds.get(pusher.kind)
        if kind is None:
            logger.warning("pusher %d: no kind %r on this server", pusher_id, pusher.kind)
            return False
        pending = await self._store.pending(pusher_id, kind.max_pending)
        if not pending:
            return False
        try:
            async with self._slot():
                outcome = await kind.deliver(pusher, pending)
        except defer.CancelledError:
            raise
        except Exception:
            logger.exception("pusher %d: %s delivery raised", pusher_id, pusher.kind)
            outcome = DeliveryOutcome(delivered_up_to=None, failed=True)
        if outcome.remove_pusher:
            logger.info("pusher %d: removed (%s said it is gone)", pusher_id, pusher.kind)
            await self._deps.remove_pusher(pusher_id)
            return False
        if outcome.failed:
            await self._after_failure(pusher_id, pending, outcome)
            return False
        if outcome.delivered_up_to is not None:
            self._badges.pop(pusher_id, None)
            await self._store.done_up_to(pusher_id, outcome.delivered_up_to, DeliveryState())
        if outcome.retry_in_ms is not None:
            next_ts = self._clock.time_msec() + outcome.retry_in_ms
            await self._store.set_delivery_state(pusher_id, DeliveryState(next_attempt_ts=next_ts))
            self._retry_later(pusher_id, outcome.retry_in_ms)
            return False
        return outcome.delivered_up_to is not None

    async def _after_failure(
        self, pusher_id: int, pending: Sequence[PendingNotification], outcome: DeliveryOutcome
    ) -> None:
        now = self._clock.time_msec()
        state = await self._store.get_delivery_state(pusher_id)
        failures = state.failures + 1
        delay = min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** min(failures - 1, 32))
        delay = int(delay * (1 + self._rng.uniform(-JITTER, JITTER)))
        delay = max(delay, outcome.retry_in_ms or 0)
        new_state = DeliveryState(failures, state.failing_since or now, now + delay)
        if outcome.delivered_up_to is not None:
            await self._store.done_up_to(pusher_id, outcome.delivered_up_to, new_state)
        else:
            await self._store.set_delivery_state(pusher_id, new_state)
        # The whole queue, not only what was just tried: a gateway down for days must
        # not make it grow without bound.
        dropped = await self._store.trim_queue(
            pusher_id, queued_before=now - GIVE_UP_MS + 1, keep=self._max_queued
        )
        if dropped:
            logger.warning(
                "pusher %d: dropped %d undeliverable notification(s) (a day old, or past %d)",
                pusher_id,
                dropped,
                self._max_queued,
            )
        logger.info(
            "pusher %d: delivery failed %d time(s); next in %d ms", pusher_id, failures, delay
        )
        self._retry_later(pusher_id, delay)

    def _retry_later(self, pusher_id: int, delay_ms: int) -> None:
        if self._stopped:
            return
        old = self._timers.pop(pusher_id, None)
        if old is not None and old.active():
            old.cancel()
        self._timers[pusher_id] = self._reactor.callLater(
            max(delay_ms, 0) / 1000, self._on_timer, pusher_id
        )

    # --- badges ------------------------------------------------------------------------

    def receipt_moved(self, user_id: str, room_id: str) -> None:
        """``ReceiptsHandler.on_receipt``: the user read something."""
        if self._stopped or user_id not in self._users:
            return
        defer.ensureDeferred(self._update_badges(user_id)).addErrback(
            lambda failure: logger.error(
                "badge update for %s failed", user_id, exc_info=failure.value
            )
        )

    async def _update_badges(self, user_id: str) -> None:
        pushers = await self._store.get_pushers_for_user(user_id)
        quiet = [
            p
            for p in pushers
            if self._kinds.sends_badge_updates(p.kind)
            and p.pusher_id not in self._running
            and p.pusher_id not in self._timers
        ]
        if not quiet:
            return
        unread = await self._deps.unread(user_id)
        for pusher in quiet:
            kind = self._kinds.get(pusher.kind)
            if kind is None or self._badges.get(pusher.pusher_id) == unread:
                continue
            self._badges[pusher.pusher_id] = unread
            async with self._slot():
                await kind.badge_changed(pusher, unread)


def _targets(recipients: dict[str, Recipient], position: int) -> dict[str, tuple[int, ...]]:
    """The recipients who were members when the event at ``position`` was sent."""
    return {
        user_id: recipient.pusher_ids
        for user_id, recipient in recipients.items()
        if position >= recipient.since_position
    }
