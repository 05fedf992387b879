"""The run loop shared by stream readers: pokes during a run coalesce into one more
run, a timer polls after each run (sooner retry after a failure), a failed run makes
the reader unhealthy (waiters released when asked), and stop waits for the run."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock

from homeserver.streams.follower import StreamFollower


class _Reader:
    """A reader whose runs the test finishes by hand."""

    def __init__(self, clock: Clock, *, release_waiters_on_failure: bool = False) -> None:
        self.position: int | None = None
        self.runs: list[defer.Deferred[None]] = []
        self.follower = StreamFollower(
            reactor=clock,
            catch_up=self.catch_up,
            position=lambda: self.position,
            poll_interval_s=30.0,
            retry_delay_s=5.0,
            failure_message="test reader failed",
            release_waiters_on_failure=release_waiters_on_failure,
        )

    async def catch_up(self) -> None:
        run: defer.Deferred[None] = defer.Deferred()
        self.runs.append(run)
        await run


def test_pokes_during_a_run_coalesce_into_one_more_run_then_a_poll() -> None:
    clock = Clock()
    reader = _Reader(clock)
    reader.follower.start()
    assert len(reader.runs) == 1
    reader.follower.poke()
    reader.follower.poke()
    assert len(reader.runs) == 1
    reader.runs[0].callback(None)
    # The pokes made one more run, right after the first.
    assert len(reader.runs) == 2
    reader.runs[1].callback(None)
    assert len(reader.runs) == 2
    clock.advance(29)
    assert len(reader.runs) == 2
    clock.advance(1)  # the poll
    assert len(reader.runs) == 3
    reader.runs[2].callback(None)


@pytest_twisted.ensureDeferred
async def test_a_failed_run_is_retried_sooner_and_waiters_are_released_when_asked() -> None:
    clock = Clock()
    reader = _Reader(clock, release_waiters_on_failure=True)
    reader.position = 1
    reader.follower.start()
    waiting = defer.ensureDeferred(reader.follower.wait_for(2, 60))
    assert reader.follower.waiting == 1
    reader.runs[0].errback(RuntimeError("database down"))
    assert reader.follower.failing
    # Released at once, the position not reached; later callers do not wait.
    assert await waiting is False
    assert await reader.follower.wait_for(2, 60) is False
    clock.advance(5)  # the retry
    assert len(reader.runs) == 2
    reader.position = 2
    reader.runs[1].callback(None)
    reader.follower.advanced()
    assert not reader.follower.failing
    assert await reader.follower.wait_for(2, 60) is True
    await reader.follower.stop()


@pytest_twisted.ensureDeferred
async def test_stop_waits_for_the_run_and_wakes_waiters() -> None:
    clock = Clock()
    reader = _Reader(clock)
    reader.position = 1
    reader.follower.start()
    waiting = defer.ensureDeferred(reader.follower.wait_for(5, 60))
    stopping = defer.ensureDeferred(reader.follower.stop())
    assert not stopping.called
    reader.runs[0].callback(None)
    await stopping
    assert await waiting is False
    assert reader.follower.waiting == 0
    clock.advance(60)  # no poll after a stop
    assert len(reader.runs) == 1
