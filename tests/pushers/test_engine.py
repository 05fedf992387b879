"""The pusher engine's delivery rules on both engines, with a fake clock: failed
deliveries back off exponentially (recorded in the pusher's row), a failure trims the
whole queue (a day old, or past the cap), a success clears the failure state, a removed
pusher's delivery is cancelled without counting as a failure, deliveries in flight are
bounded, and each kind gets as many notifications as it asks for.

spec: push-gateway-api.md#homeserver-behaviour ("retry for a reasonable amount of time
using exponential backoff")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest_twisted
from twisted.internet import defer, task

from homeserver.clock import Clock
from homeserver.pushers.engine import FIRST_RETRY_MS, GIVE_UP_MS, JITTER, EngineDeps, PusherEngine
from homeserver.pushers.kinds import DeliveryOutcome, PendingNotification, Pusher, PusherKind
from homeserver.pushers.registry import PusherKinds
from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.pushers import NewPusher, PusherStore, QueuedNotification
from homeserver.storage.state import StateStore
from homeserver.storage.stream_consumers import StreamConsumerStore

NOW_MS = 1_000_000_000_000


class FlakyKind:
    name = "flaky"
    max_pending: int | None = 20

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.working = False

    async def check(self, user_id: str, app_id: str, pushkey: str, data: Mapping[str, Any]) -> None:
        pass

    async def deliver(
        self, pusher: Pusher, pending: Sequence[PendingNotification]
    ) -> DeliveryOutcome:
        self.calls.append([p.position for p in pending])
        if self.working:
            return DeliveryOutcome(delivered_up_to=pending[-1].position)
        return DeliveryOutcome(delivered_up_to=None, failed=True)

    async def badge_changed(self, pusher: Pusher, unread: int) -> None:
        pass


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await task.deferLater(installed_reactor(), 0.02, lambda: None)
    raise AssertionError("condition never held")


class HangingKind:
    """Deliveries that wait until the test lets them go (or they are cancelled)."""

    name = "hanging"

    def __init__(self, max_pending: int | None = 20) -> None:
        self.max_pending = max_pending
        self.calls: list[list[int]] = []
        self.waiting: list[defer.Deferred[None]] = []
        self.cancelled = 0

    async def check(self, user_id: str, app_id: str, pushkey: str, data: Mapping[str, Any]) -> None:
        pass

    async def deliver(
        self, pusher: Pusher, pending: Sequence[PendingNotification]
    ) -> DeliveryOutcome:
        self.calls.append([p.position for p in pending])
        waiting: defer.Deferred[None] = defer.Deferred()
        self.waiting.append(waiting)
        try:
            await waiting
        except defer.CancelledError:
            self.cancelled += 1
            raise
        return DeliveryOutcome(delivered_up_to=pending[-1].position)

    async def badge_changed(self, pusher: Pusher, unread: int) -> None:
        pass


async def until_stored(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(200):
        if await check():
            return
        await task.deferLater(installed_reactor(), 0.02, lambda: None)
    raise AssertionError("condition never held")


async def _unused(_: object) -> Any:
    raise AssertionError("not called")


def engine_for(db: Database, kind: PusherKind, fake: task.Clock, **options: Any) -> PusherEngine:
    """An engine delivering with ``kind`` alone."""
    kinds = PusherKinds()
    kinds.register(kind)
    return PusherEngine(
        store=PusherStore(db),
        consumers=StreamConsumerStore(db),
        deps=EngineDeps(
            events=EventStore(db, StateStore(db)),
            state=None,  # type: ignore[arg-type]  # no events are read here
            push_rules=None,  # type: ignore[arg-type]
            ignored_users=_unused,
            unread=_unused,
            remove_pusher=_unused,
        ),
        kinds=kinds,
        clock=Clock(fake),
        reactor=fake,
        **options,
    )


async def add_pusher(store: PusherStore, kind: str, pushkey: str) -> Pusher:
    pusher, _ = await store.set_pusher(
        NewPusher("@a:hs", kind, "app", pushkey, "App", "Phone", None, "en", {}, None),
        now=NOW_MS,
        remove_other_users=True,
        max_per_user=50,
    )
    return pusher


def fake_clock() -> task.Clock:
    fake = task.Clock()
    fake.advance(NOW_MS / 1000)
    return fake


@pytest_twisted.ensureDeferred
async def test_failures_back_off_drop_day_old_notifications_and_clear_on_success(
    db: Database,
) -> None:
    store = PusherStore(db)
    fake = fake_clock()
    kind = FlakyKind()
    engine = engine_for(db, kind, fake)
    pid = (await add_pusher(store, "flaky", "key")).pusher_id

    async def retry_scheduled(failures: int) -> bool:
        """The ``failures``-th failure is recorded and its retry timer set."""
        state = await store.get_delivery_state(pid)
        due = state.next_attempt_ts
        return (
            state.failures == failures
            and due is not None
            and any(abs(call.getTime() * 1000 - due) < 1 for call in fake.getDelayedCalls())
        )

    await store.enqueue(
        [QueuedNotification(pid, 1, "$old", "!r:hs", ["notify"])], now=NOW_MS - GIVE_UP_MS
    )
    await store.enqueue([QueuedNotification(pid, 2, "$new", "!r:hs", ["notify"])], now=NOW_MS)
    await engine.start()
    try:
        await until(lambda: len(kind.calls) == 1)
        await until_stored(lambda: retry_scheduled(1))
        state = await store.get_delivery_state(pid)
        assert kind.calls[0] == [1, 2]
        # The day-old notification failed once more: dropped; the new one waits.
        assert [p.position for p in await store.pending(pid, 10)] == [2]
        assert state.failures == 1 and state.failing_since == NOW_MS
        assert state.next_attempt_ts is not None
        first_delay = state.next_attempt_ts - NOW_MS
        assert FIRST_RETRY_MS * (1 - JITTER) <= first_delay <= FIRST_RETRY_MS * (1 + JITTER)

        fake.advance(first_delay / 1000)
        await until(lambda: len(kind.calls) == 2)
        await until_stored(lambda: retry_scheduled(2))
        state = await store.get_delivery_state(pid)
        assert state.failures == 2 and state.next_attempt_ts is not None
        second_delay = state.next_attempt_ts - NOW_MS - first_delay
        assert (
            2 * FIRST_RETRY_MS * (1 - JITTER) <= second_delay <= 2 * FIRST_RETRY_MS * (1 + JITTER)
        )

        kind.working = True
        fake.advance(second_delay / 1000)
        await until(lambda: len(kind.calls) == 3)
        for _ in range(200):
            if not await store.pending(pid, 10):
                break
            await task.deferLater(installed_reactor(), 0.02, lambda: None)
        assert await store.pending(pid, 10) == []
        state = await store.get_delivery_state(pid)
        assert state.failures == 0 and state.next_attempt_ts is None
    finally:
        await engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_failure_trims_the_whole_queue_to_a_day_and_to_the_cap(db: Database) -> None:
    store = PusherStore(db)
    fake = fake_clock()
    kind = FlakyKind()
    engine = engine_for(db, kind, fake, max_queued=5)
    pid = (await add_pusher(store, "flaky", "key")).pusher_id
    # 30 day-old notifications (more than one delivery takes), then 8 recent ones.
    await store.enqueue(
        [QueuedNotification(pid, p, f"$old{p}", "!r:hs", ["notify"]) for p in range(1, 31)],
        now=NOW_MS - GIVE_UP_MS,
    )
    await store.enqueue(
        [QueuedNotification(pid, p, f"$new{p}", "!r:hs", ["notify"]) for p in range(31, 39)],
        now=NOW_MS,
    )
    await engine.start()
    try:
        await until(lambda: len(kind.calls) == 1)
        assert kind.calls[0] == list(range(1, 21))

        async def trimmed() -> bool:
            positions = [p.position for p in await store.pending(pid, None)]
            # Every day-old row went, tried or not; only the 5 newest of the rest stay.
            return positions == list(range(34, 39))

        await until_stored(trimmed)
        assert (await store.get_delivery_state(pid)).failures == 1
    finally:
        await engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_removed_pushers_delivery_is_cancelled_and_is_no_failure(db: Database) -> None:
    store = PusherStore(db)
    fake = fake_clock()
    kind = HangingKind()
    engine = engine_for(db, kind, fake)
    removed = await add_pusher(store, "hanging", "removed")
    stopped = await add_pusher(store, "hanging", "stopped")
    for pusher in (removed, stopped):
        await store.enqueue(
            [QueuedNotification(pusher.pusher_id, 1, "$e", "!r:hs", ["notify"])], now=NOW_MS
        )
    await engine.start()
    try:
        await until(lambda: len(kind.calls) == 2)
        engine.pushers_removed(await store.delete_pusher("@a:hs", "app", "removed"))
        assert kind.cancelled == 1
    finally:
        await engine.stop()
    # Shutdown cancels the other one: neither is recorded as a failure.
    assert kind.cancelled == 2
    state = await store.get_delivery_state(stopped.pusher_id)
    assert state.failures == 0 and state.next_attempt_ts is None
    assert [p.position for p in await store.pending(stopped.pusher_id, None)] == [1]


@pytest_twisted.ensureDeferred
async def test_deliveries_in_flight_are_bounded(db: Database) -> None:
    store = PusherStore(db)
    fake = fake_clock()
    kind = HangingKind()
    engine = engine_for(db, kind, fake, max_concurrent_deliveries=2)
    for pushkey in ("one", "two", "three"):
        pusher = await add_pusher(store, "hanging", pushkey)
        await store.enqueue(
            [QueuedNotification(pusher.pusher_id, 1, "$e", "!r:hs", ["notify"])], now=NOW_MS
        )
    await engine.start()
    try:
        await until(lambda: len(kind.calls) == 2)
        # The third waits for a slot; one finishing lets it in.
        await task.deferLater(installed_reactor(), 0.2, lambda: None)
        assert len(kind.calls) == 2
        kind.waiting[0].callback(None)
        await until(lambda: len(kind.calls) == 3)
    finally:
        await engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_kind_gets_as_many_pending_notifications_as_it_asks_for(db: Database) -> None:
    store = PusherStore(db)
    fake = fake_clock()
    everything = HangingKind(max_pending=None)
    engine = engine_for(db, everything, fake)
    pusher = await add_pusher(store, "hanging", "all")
    await store.enqueue(
        [QueuedNotification(pusher.pusher_id, p, f"$e{p}", "!r:hs", []) for p in range(1, 26)],
        now=NOW_MS,
    )
    await engine.start()
    try:
        await until(lambda: len(everything.calls) == 1)
        assert everything.calls[0] == list(range(1, 26))
    finally:
        await engine.stop()
