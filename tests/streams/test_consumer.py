"""Background readers of the events stream keep their own position, on both engines:
a restart resumes where the last run stopped, a failing handler gets the same batch
again without the position passing it, one event that always fails is narrowed down
and skipped, positions of hidden events are passed, and waiting for the consumer
times out or is cancelled cleanly.  A position written behind is stored after its
delay and at stop, and a restart before it was written hands events over again
rather than skipping them."""

from __future__ import annotations

from collections.abc import Sequence

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure

from homeserver.events.event import InternalMetadata
from homeserver.storage.database import Database
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.streams.consumer import WRITE_DELAY_S, EventStreamConsumer, StreamedEvent
from tests.receipts.rooms import BOB, Rooms


def _consumer(
    db: Database, rooms: Rooms, handled: list[list[str]], *, fail_first: bool = False, **kw: object
) -> EventStreamConsumer:
    failures = [fail_first]

    async def handle(batch: Sequence[StreamedEvent]) -> None:
        handled.append([streamed.event.event_id for streamed in batch])
        if failures[0]:
            failures[0] = False
            raise RuntimeError("the handler fails once")

    return EventStreamConsumer(
        name="test_consumer",
        store=StreamConsumerStore(db),
        events=rooms.events,
        reactor=reactor,
        handle=handle,
        **kw,  # type: ignore[arg-type]
    )


@pytest_twisted.ensureDeferred
async def test_a_restarted_consumer_resumes_from_its_stored_position(db: Database) -> None:
    rooms = Rooms.on(db)
    room_id = await rooms.public_room(BOB)
    before = await rooms.message(room_id, BOB, "before")
    handled: list[list[str]] = []
    first = _consumer(db, rooms, handled, start_from_beginning=True)
    first.start()
    assert await first.wait_for(await rooms.events.get_max_stream_ordering(), 30)
    await first.stop()
    seen_first = [event_id for batch in handled for event_id in batch]
    assert seen_first[-1] == before
    # The whole history from the start: the room's creation comes first.
    assert len(seen_first) > 1
    after = await rooms.message(room_id, BOB, "after")
    handled.clear()
    second = _consumer(db, rooms, handled, start_from_beginning=True)
    second.start()
    assert await second.wait_for(await rooms.events.get_max_stream_ordering(), 30)
    await second.stop()
    assert [event_id for batch in handled for event_id in batch] == [after]
    assert await StreamConsumerStore(db).get_position("test_consumer") == (
        await rooms.events.get_max_stream_ordering()
    )


@pytest_twisted.ensureDeferred
async def test_a_new_consumer_not_from_the_beginning_skips_history(db: Database) -> None:
    rooms = Rooms.on(db)
    room_id = await rooms.public_room(BOB)
    await rooms.message(room_id, BOB, "old news")
    handled: list[list[str]] = []
    consumer = _consumer(db, rooms, handled, start_from_beginning=False)
    consumer.start()
    # Its first run records where it starts (the position then).
    store = StreamConsumerStore(db)
    for _ in range(300):
        if await store.get_position("test_consumer") is not None:
            break
        await deferLater(reactor, 0.05)
    assert await store.get_position("test_consumer") is not None
    fresh = await rooms.message(room_id, BOB, "fresh")
    consumer.poke()
    assert await consumer.wait_for(await rooms.events.get_max_stream_ordering(), 30)
    await consumer.stop()
    assert [event_id for batch in handled for event_id in batch] == [fresh]


@pytest_twisted.ensureDeferred
async def test_a_failing_batch_is_retried_before_the_position_moves(db: Database) -> None:
    rooms = Rooms.on(db)
    room_id = await rooms.public_room(BOB)
    await rooms.message(room_id, BOB, "hello")
    handled: list[list[str]] = []
    consumer = _consumer(
        db, rooms, handled, fail_first=True, start_from_beginning=True, retry_delay_s=0.05
    )
    consumer.start()
    assert await consumer.wait_for(await rooms.events.get_max_stream_ordering(), 30)
    await consumer.stop()
    # The batch that failed came again, whole: nothing was skipped.
    assert len(handled) == 2
    assert handled[0] == handled[1]


async def _caught_up(consumer: EventStreamConsumer, rooms: Rooms) -> None:
    """Poll (with a deadline) until the consumer's position reaches the stream's."""
    target = await rooms.events.get_max_stream_ordering()
    for _ in range(600):
        if consumer.position is not None and consumer.position >= target:
            return
        await deferLater(reactor, 0.02)
    raise AssertionError(f"stuck at {consumer.position}, wanted {target}")


@pytest_twisted.ensureDeferred
async def test_one_event_that_always_fails_is_narrowed_down_and_skipped(db: Database) -> None:
    rooms = Rooms.on(db)
    room_id = await rooms.public_room(BOB)
    sent = [await rooms.message(room_id, BOB, f"message {i}") for i in range(6)]
    bad = sent[3]
    handled: list[str] = []
    #: consumer.healthy at each call after a failure.
    health_after_failure: list[bool] = []
    failed = [False]
    consumer: EventStreamConsumer

    async def handle(batch: Sequence[StreamedEvent]) -> None:
        if failed[0]:
            health_after_failure.append(consumer.healthy)
        if any(streamed.event.event_id == bad for streamed in batch):
            failed[0] = True
            raise RuntimeError("this event cannot be handled")
        handled.extend(streamed.event.event_id for streamed in batch)

    consumer = EventStreamConsumer(
        name="test_consumer",
        store=StreamConsumerStore(db),
        events=rooms.events,
        reactor=reactor,
        handle=handle,
        start_from_beginning=True,
        batch_size=8,
        retry_delay_s=0.01,
        max_attempts=2,
    )
    consumer.start()
    await _caught_up(consumer, rooms)
    # Every other event was handled once the bad one was found, and reading went on.
    assert [event_id for event_id in sent if event_id in handled] == sent[:3] + sent[4:]
    assert bad not in handled
    # While failing, the consumer says so (and wait_for does not wait for it).
    assert health_after_failure and not health_after_failure[0]
    assert consumer.healthy
    assert await consumer.wait_for(await rooms.events.get_max_stream_ordering(), 1)
    await consumer.stop()


@pytest_twisted.ensureDeferred
async def test_a_short_read_moves_past_positions_of_hidden_events(db: Database) -> None:
    rooms = Rooms.on(db)
    room_id = await rooms.public_room(BOB)
    shown = await rooms.message(room_id, BOB, "shown")
    await rooms.send(
        room_id,
        "m.room.message",
        BOB,
        {"msgtype": "m.text", "body": "soft-failed"},
        internal=InternalMetadata(soft_failed=True),
    )
    handled: list[list[str]] = []
    consumer = _consumer(db, rooms, handled, start_from_beginning=True)
    consumer.start()
    last = await rooms.events.get_max_stream_ordering()
    assert await consumer.wait_for(last, 30)
    await consumer.stop()
    # The soft-failed event is the stream's last position: reached, never handed over.
    assert consumer.position == last
    seen = [event_id for batch in handled for event_id in batch]
    assert seen[-1] == shown


@pytest_twisted.ensureDeferred
async def test_wait_for_times_out_and_a_cancelled_wait_leaves_nothing_behind(
    db: Database,
) -> None:
    rooms = Rooms.on(db)
    room_id = await rooms.public_room(BOB)
    await rooms.message(room_id, BOB, "hello")
    clock = Clock()
    consumer = EventStreamConsumer(
        name="test_consumer",
        store=StreamConsumerStore(db),
        events=rooms.events,
        reactor=clock,
        handle=_ignore,
        start_from_beginning=True,
    )
    consumer.start()
    await _caught_up(consumer, rooms)
    beyond = await rooms.events.get_max_stream_ordering() + 1000
    # Timing out: False, and the waiter is gone.
    timed_out = defer.ensureDeferred(consumer.wait_for(beyond, 5))
    assert consumer.waiting == 1
    clock.advance(5)
    assert await timed_out is False
    assert consumer.waiting == 0
    # Cancelled (the /search request went away): the waiter and its timer are gone,
    # so the timer cannot fire into the cancelled wait later.
    cancelled = defer.ensureDeferred(consumer.wait_for(beyond, 5))
    assert consumer.waiting == 1
    cancelled.cancel()
    assert consumer.waiting == 0
    clock.advance(10)  # an uncancelled timer would raise AlreadyCalledError here
    failures: list[Failure] = []
    cancelled.addErrback(failures.append)
    assert failures and failures[0].check(defer.CancelledError)
    await consumer.stop()


async def _ignore(batch: Sequence[StreamedEvent]) -> None:
    return None


async def _stored(store: StreamConsumerStore, wanted: int) -> None:
    """Poll (with a deadline) until the stored position is ``wanted``."""
    for _ in range(600):
        if await store.get_position("test_consumer") == wanted:
            return
        await deferLater(reactor, 0.02)
    raise AssertionError(f"stored {await store.get_position('test_consumer')}, wanted {wanted}")


@pytest_twisted.ensureDeferred
async def test_a_position_written_behind_is_stored_after_its_delay_and_at_stop(
    db: Database,
) -> None:
    rooms = Rooms.on(db)
    room_id = await rooms.public_room(BOB)
    store = StreamConsumerStore(db)
    write_clock = Clock()
    handled: list[list[str]] = []
    consumer = _consumer(
        db, rooms, handled, start_from_beginning=True, write_behind=True, write_reactor=write_clock
    )
    consumer.start()
    await _caught_up(consumer, rooms)
    first = consumer.position
    assert first is not None and first > 0
    # Handled, not written yet: only the first run's starting point is stored.
    assert await store.get_position("test_consumer") == 0
    assert consumer.stored_position == 0
    write_clock.advance(WRITE_DELAY_S)
    await _stored(store, first)
    assert consumer.stored_position == first

    await rooms.message(room_id, BOB, "later")
    consumer.poke()
    await _caught_up(consumer, rooms)
    assert await store.get_position("test_consumer") == first
    # Stopping writes the last position: a restart repeats nothing.
    await consumer.stop()
    last = await rooms.events.get_max_stream_ordering()
    assert consumer.position == last
    assert await store.get_position("test_consumer") == last


@pytest_twisted.ensureDeferred
async def test_a_consumer_restarted_before_its_position_was_written_hands_events_over_again(
    db: Database,
) -> None:
    rooms = Rooms.on(db)
    room_id = await rooms.public_room(BOB)
    store = StreamConsumerStore(db)
    handled_before: list[list[str]] = []

    async def handle_before(batch: Sequence[StreamedEvent]) -> None:
        handled_before.append([streamed.event.event_id for streamed in batch])

    # Its timers (polls and the write delay) never fire: after its last batch it is
    # as good as a process that crashed before writing its position.
    crashed = EventStreamConsumer(
        name="test_consumer",
        store=store,
        events=rooms.events,
        reactor=Clock(),
        handle=handle_before,
        start_from_beginning=False,
        write_behind=True,
        write_reactor=Clock(),
    )
    crashed.start()
    await _caught_up(crashed, rooms)
    started_at = await store.get_position("test_consumer")
    sent = [await rooms.message(room_id, BOB, f"message {i}") for i in range(3)]
    crashed.poke()
    await _caught_up(crashed, rooms)
    assert [event_id for batch in handled_before for event_id in batch] == sent
    assert await store.get_position("test_consumer") == started_at

    handled_after: list[list[str]] = []
    restarted = _consumer(db, rooms, handled_after, start_from_beginning=False)
    restarted.start()
    assert await restarted.wait_for(await rooms.events.get_max_stream_ordering(), 30)
    await restarted.stop()
    # The same events again, in order: none skipped.
    assert [event_id for batch in handled_after for event_id in batch] == sent
    assert await store.get_position("test_consumer") == (
        await rooms.events.get_max_stream_ordering()
    )
