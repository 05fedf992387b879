"""Concurrent identical calls share one computation, cancelled only when all leave."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from homeserver.util.single_flight import SingleFlight


class Computation:
    def __init__(self) -> None:
        self.runs = 0
        self.cancelled = 0
        self.pending: defer.Deferred[str] | None = None

    async def __call__(self) -> str:
        self.runs += 1
        self.pending = defer.Deferred(lambda _: self._count_cancel())
        return await self.pending

    def _count_cancel(self) -> None:
        self.cancelled += 1


def start(flight: SingleFlight[str, str], key: str, compute: Computation) -> defer.Deferred[str]:
    return defer.ensureDeferred(flight.run(key, compute))


def test_concurrent_calls_with_one_key_share_one_run() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    compute = Computation()
    first, second = start(flight, "k", compute), start(flight, "k", compute)
    assert compute.runs == 1
    assert compute.pending is not None
    compute.pending.callback("answer")
    assert first.result == second.result == "answer"
    assert flight.in_flight() == 0


def test_different_keys_run_separately_and_finished_keys_run_again() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    compute = Computation()
    start(flight, "a", compute)
    start(flight, "b", compute)
    assert compute.runs == 2


def test_one_caller_leaving_does_not_cancel_the_others() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    compute = Computation()
    leaving, staying = start(flight, "k", compute), start(flight, "k", compute)
    leaving.cancel()
    leaving.addErrback(lambda failure: failure.trap(defer.CancelledError))
    assert compute.cancelled == 0
    assert compute.pending is not None
    compute.pending.callback("still computed")
    assert staying.result == "still computed"


def test_the_run_is_cancelled_when_every_caller_has_left() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    compute = Computation()
    callers = [start(flight, "k", compute) for _ in range(2)]
    for caller in callers:
        caller.cancel()
        caller.addErrback(lambda failure: failure.trap(defer.CancelledError))
    assert compute.cancelled == 1
    assert flight.in_flight() == 0
    # A new caller starts afresh.
    start(flight, "k", compute)
    assert compute.runs == 2


def test_a_failure_reaches_every_caller() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    compute = Computation()
    callers = [start(flight, "k", compute) for _ in range(2)]
    assert compute.pending is not None
    compute.pending.errback(ValueError("broken"))
    for caller in callers:
        with pytest.raises(ValueError, match="broken"):
            caller.result.raiseException()  # type: ignore[attr-defined]
        caller.addErrback(lambda failure: None)


def test_a_computation_that_finishes_without_waiting_answers_its_caller() -> None:
    # A sync answered wholly from caches completes before its caller could join.
    flight: SingleFlight[str, str] = SingleFlight()

    async def at_once() -> str:
        return "answer"

    async def failing_at_once() -> str:
        raise ValueError("no")

    assert start_with(flight, "k", at_once).result == "answer"
    assert flight.in_flight() == 0
    failures: list[Failure] = []
    start_with(flight, "k", failing_at_once).addErrback(failures.append)
    assert [failure.check(ValueError) for failure in failures] == [ValueError]


def start_with(
    flight: SingleFlight[str, str], key: str, compute: Callable[[], Awaitable[str]]
) -> defer.Deferred[str]:
    return defer.ensureDeferred(flight.run(key, compute))
