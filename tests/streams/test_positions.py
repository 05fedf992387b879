"""Stream positions become visible only in order."""

from __future__ import annotations

from twisted.internet import defer

from homeserver.streams.positions import StreamPositions


def test_a_later_position_waits_for_an_earlier_one() -> None:
    stream = StreamPositions(current=5)
    first, second = stream.allocate(), stream.allocate()
    assert (first, second) == (6, 7)
    waiting = defer.ensureDeferred(stream.wait_until_visible(second))
    stream.finish(second)
    assert stream.current == 5  # 6 is still being written
    assert not waiting.called
    stream.finish(first)
    assert stream.current == 7
    assert waiting.called


def test_abandoned_positions_do_not_block_the_stream() -> None:
    stream = StreamPositions(current=0)
    failed, written = stream.allocate(), stream.allocate()
    stream.finish(written)
    stream.finish(failed)  # its transaction rolled back: a gap, not a hold-up
    assert stream.current == 2


def test_visible_positions_do_not_wait() -> None:
    stream = StreamPositions(current=3)
    assert defer.ensureDeferred(stream.wait_until_visible(2)).called
