"""Backing off from failing destinations, on both engines, with a fake clock.

Intervals start at the minimum and grow by the multiplier (plus up to 25% jitter)
to the maximum; only a retry grows them; a success clears them and announces the
destination; the state outlives the object (it is in the database).
"""

from __future__ import annotations

import random

import pytest_twisted
from twisted.internet import task

from federation.client.backoff import DestinationBackoff
from homeserver.clock import Clock
from homeserver.storage.database import Database
from homeserver.storage.destinations import DestinationStore

MIN_MS = 10_000
MAX_MS = 100_000


def make_backoff(db: Database, time: task.Clock) -> DestinationBackoff:
    return DestinationBackoff(
        DestinationStore(db),
        Clock(time),
        min_interval_ms=MIN_MS,
        multiplier=2.0,
        max_interval_ms=MAX_MS,
        rng=random.Random(5),
    )


def started_clock() -> task.Clock:
    time = task.Clock()
    time.advance(1_700_000_000)
    return time


@pytest_twisted.ensureDeferred
async def test_intervals_grow_to_the_maximum_and_a_success_resets(db: Database) -> None:
    time = started_clock()
    backoff = make_backoff(db, time)
    up: list[str] = []
    backoff.on_destination_up.append(up.append)

    assert await backoff.is_backing_off("remote.test") is None
    await backoff.record_success("remote.test")  # nothing to clear, nothing announced
    assert up == []

    intervals = []
    for _ in range(6):
        await backoff.record_failure("remote.test")
        timings = await backoff.get_timings("remote.test")
        assert timings is not None
        intervals.append(timings.retry_interval)
        retry_at = await backoff.is_backing_off("remote.test")
        assert retry_at == timings.retry_at > time.seconds() * 1000
        time.advance(timings.retry_interval / 1000)
        assert await backoff.is_backing_off("remote.test") is None

    assert MIN_MS <= intervals[0] <= MIN_MS * 1.25
    for before, after in zip(intervals, intervals[1:], strict=False):
        assert after == MAX_MS or 2 * before <= after <= 2.5 * before
    assert intervals[-1] == MAX_MS

    await backoff.record_success("remote.test")
    assert up == ["remote.test"]
    assert await backoff.get_timings("remote.test") is None
    assert await DestinationStore(db).get_retry_timings("remote.test") is None
    # A new run of failures starts again at the minimum.
    await backoff.record_failure("remote.test")
    timings = await backoff.get_timings("remote.test")
    assert timings is not None and timings.retry_interval <= MIN_MS * 1.25


@pytest_twisted.ensureDeferred
async def test_failures_while_backing_off_do_not_grow_the_interval(db: Database) -> None:
    time = started_clock()
    backoff = make_backoff(db, time)
    await backoff.record_failure("remote.test")
    first = await backoff.get_timings("remote.test")
    # Requests that were in flight, or sent with ignore_backoff, fail too.
    for _ in range(5):
        time.advance(1)
        await backoff.record_failure("remote.test")
    assert await backoff.get_timings("remote.test") == first


@pytest_twisted.ensureDeferred
async def test_the_backoff_survives_a_restart(db: Database) -> None:
    time = started_clock()
    await make_backoff(db, time).record_failure("remote.test")
    restarted = make_backoff(db, time)
    up: list[str] = []
    restarted.on_destination_up.append(up.append)
    retry_at = await restarted.is_backing_off("remote.test")
    assert retry_at is not None and retry_at >= time.seconds() * 1000 + MIN_MS
    # failure_ts stays the start of the run across retries.
    time.advance(MIN_MS * 1.25 / 1000)
    await restarted.record_failure("remote.test")
    timings = await restarted.get_timings("remote.test")
    assert timings is not None
    assert timings.failure_ts == 1_700_000_000_000
    await restarted.record_success("remote.test")
    assert up == ["remote.test"]
    assert await make_backoff(db, time).is_backing_off("remote.test") is None


@pytest_twisted.ensureDeferred
async def test_a_failing_callback_does_not_stop_the_others(db: Database) -> None:
    time = started_clock()
    backoff = make_backoff(db, time)
    heard: list[str] = []

    def broken(destination: str) -> None:
        raise RuntimeError("boom")

    backoff.on_destination_up.extend([broken, heard.append])
    await backoff.record_failure("remote.test")
    await backoff.record_success("remote.test")
    assert heard == ["remote.test"]
