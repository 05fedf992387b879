"""Stream positions come from a sequence and become visible only in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from twisted.internet import defer

from homeserver.storage.transaction import Transaction
from homeserver.streams.positions import StreamPositions


class _Sequence:
    """Stands in for ``Engine.next_id``: hands out the numbers it is given, and can
    run something while a fetch is under way (another thread's allocation)."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)
        self.during_next_fetch: Callable[[], None] | None = None

    def next_id(self, txn: Any, sequence: str) -> int:
        during, self.during_next_fetch = self.during_next_fetch, None
        if during is not None:
            during()
        return self.values.pop(0)


class _Txn:
    """One transaction attempt: what ``PositionsWrite`` uses of a Transaction."""

    def __init__(self, sequence: _Sequence) -> None:
        self.engine = sequence
        self.after_commit: list[Callable[[], None]] = []

    def call_after_commit(self, callback: Callable[[], None]) -> None:
        self.after_commit.append(callback)

    def commit(self) -> None:
        for callback in self.after_commit:
            callback()


def txn(sequence: _Sequence) -> Transaction:
    return cast(Transaction, _Txn(sequence))


def commit(attempt: Transaction) -> None:
    cast(_Txn, attempt).commit()


def test_a_later_position_waits_for_an_earlier_one() -> None:
    sequence = _Sequence(6, 7)
    stream = StreamPositions("s", current=5)
    first = stream.allocate_txn(txn(sequence))
    second = stream.allocate_txn(txn(sequence))
    waiting = defer.ensureDeferred(stream.wait_until_visible(second))
    stream.finish(second, committed=True)
    assert stream.current == 5  # 6 is still being written
    assert not waiting.called
    stream.finish(first, committed=True)
    assert stream.current == 7
    assert waiting.called


def test_abandoned_positions_do_not_block_the_stream() -> None:
    sequence = _Sequence(1, 2)
    stream = StreamPositions("s", current=0)
    failed, written = stream.allocate_txn(txn(sequence)), stream.allocate_txn(txn(sequence))
    waiting = defer.ensureDeferred(stream.wait_until_visible(written))
    stream.finish(written, committed=True)
    assert not waiting.called
    stream.finish(failed, committed=False)  # rolled back: a gap, not a hold-up
    assert stream.current == 2
    assert waiting.called


def test_an_abandoned_position_alone_does_not_move_the_stream() -> None:
    # SQLite hands a rolled-back position out again: passing it before a later
    # commit would let that later write land below ``current``.
    sequence = _Sequence(3, 3)
    stream = StreamPositions("s", current=2)
    abandoned = stream.allocate_txn(txn(sequence))
    stream.finish(abandoned, committed=False)
    assert stream.current == 2
    again = stream.allocate_txn(txn(sequence))
    assert again == 3
    stream.finish(again, committed=True)
    assert stream.current == 3


def test_a_position_held_twice_stays_in_flight_until_both_finish() -> None:
    # SQLite: a write abandons 3 and another is handed 3 before the first finishes.
    sequence = _Sequence(3, 3)
    stream = StreamPositions("s", current=2)
    stream.allocate_txn(txn(sequence))
    stream.allocate_txn(txn(sequence))
    stream.finish(3, committed=False)
    assert stream.current == 2
    stream.finish(3, committed=True)
    assert stream.current == 3


def test_a_fetch_under_way_holds_the_stream_below_what_it_will_get() -> None:
    # PostgreSQL: one transaction's nextval returns 10, another's 11, and the second
    # registers, commits and finishes before the first has registered its 10.
    sequence = _Sequence(10, 11)
    stream = StreamPositions("s", current=9)
    later: list[int] = []

    def another_writer() -> None:
        sequence.values.reverse()  # this one gets 11 although it asked second
        later.append(stream.allocate_txn(txn(sequence)))
        stream.finish(later[0], committed=True)

    sequence.during_next_fetch = another_writer
    first = stream.allocate_txn(txn(sequence))
    assert (first, later) == (10, [11])
    # 11 was committed while 10 was unknown here: it must not have become visible.
    assert stream.current == 9
    stream.finish(first, committed=True)
    assert stream.current == 11


def test_writing_commits_only_the_attempt_that_committed() -> None:
    sequence = _Sequence(1, 2, 3)
    stream = StreamPositions("s", current=0)
    with stream.writing() as write:
        failed_attempt = txn(sequence)
        write.allocate(failed_attempt)  # 1, rolled back and retried
        retry = txn(sequence)
        positions = [write.allocate(retry), write.allocate(retry)]
        commit(retry)
        assert stream.current == 0  # nothing is finished inside the block
    assert positions == [2, 3]
    assert stream.current == 3


def test_a_write_that_failed_abandons_its_positions() -> None:
    sequence = _Sequence(1, 2)
    stream = StreamPositions("s", current=0)
    other = stream.allocate_txn(txn(sequence))
    with pytest.raises(RuntimeError), stream.writing() as write:
        write.allocate(txn(sequence))
        raise RuntimeError("the transaction failed")
    assert stream.current == 0  # abandoned 2 is no reason to move
    stream.finish(other, committed=True)
    assert stream.current == 1


def test_waiters_wake_in_order_as_the_stream_passes_them() -> None:
    sequence = _Sequence(1, 2, 3)
    stream = StreamPositions("s", current=0)
    positions = [stream.allocate_txn(txn(sequence)) for _ in range(3)]
    woken: list[int] = []

    async def wait(position: int) -> None:
        await stream.wait_until_visible(position)
        woken.append(position)

    for position in reversed(positions):
        defer.ensureDeferred(wait(position))
    stream.finish(3, committed=True)
    stream.finish(2, committed=True)
    assert woken == []
    stream.finish(1, committed=True)
    assert woken == [1, 2, 3]


def test_visible_positions_do_not_wait() -> None:
    stream = StreamPositions("s", current=3)
    assert defer.ensureDeferred(stream.wait_until_visible(2)).called
    assert defer.ensureDeferred(stream.wait_until_visible(3)).called


def test_a_cancelled_waiter_does_not_break_the_others() -> None:
    sequence = _Sequence(1)
    stream = StreamPositions("s", current=0)
    position = stream.allocate_txn(txn(sequence))
    cancelled = defer.ensureDeferred(stream.wait_until_visible(position))
    kept = defer.ensureDeferred(stream.wait_until_visible(position))
    cancelled.cancel()
    cancelled.addErrback(lambda failure: failure.trap(defer.CancelledError))
    stream.finish(position, committed=True)
    assert kept.called
