"""AckedPositions on both engines: acknowledged positions written behind, a short
while after they move, many destinations per write; read back before they are
written, never moving down, written at stop, and written again after a failure.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest_twisted
from twisted.internet import defer, task

from federation.sender.acks import RETRY_S, WRITE_DELAY_S, AckedPositions
from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from homeserver.storage.federation_outbound import FederationOutboundStore
from tests.federation.sender.conftest import until_stored


class CountingStore(FederationOutboundStore):
    """The real store, counting its acknowledged-position writes (and able to hold
    one back, to look at what is read while it is under way)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.writes: list[dict[str, int]] = []
        self.gate: defer.Deferred[None] | None = None

    async def set_acked_positions(self, positions: Mapping[str, int]) -> None:
        self.writes.append(dict(positions))
        if self.gate is not None:
            await self.gate
        await super().set_acked_positions(positions)


@pytest_twisted.ensureDeferred
async def test_positions_moved_together_are_written_in_one_transaction(db: Database) -> None:
    store = CountingStore(db)
    clock = task.Clock()
    acks = AckedPositions(store, clock)
    for n in range(50):
        acks.record(f"remote{n}.test", 100 + n)
    assert store.writes == []
    clock.advance(WRITE_DELAY_S)

    async def written() -> bool:
        return await store.get_acked_position("remote49.test") == 149

    await until_stored(written, "the positions written")
    assert [len(write) for write in store.writes] == [50]
    assert await store.get_acked_position("remote0.test") == 100


@pytest_twisted.ensureDeferred
async def test_a_position_is_read_back_before_it_is_written(db: Database) -> None:
    store = CountingStore(db)
    store.gate = defer.Deferred()
    await store.set_acked_position("remote.test", 5)
    clock = task.Clock()
    acks = AckedPositions(store, clock)
    acks.record("remote.test", 8)
    assert await acks.get("remote.test") == 8  # not written yet
    clock.advance(WRITE_DELAY_S)  # being written, held back
    acks.record("other.test", 3)  # recorded while the write is under way: the next one
    assert await store.get_acked_position("remote.test") == 5
    assert await acks.get("remote.test") == 8
    acks.record("remote.test", 9)
    assert await acks.get("remote.test") == 9
    assert await acks.get("unknown.test") is None
    store.gate.callback(None)
    store.gate = None
    await acks.flush()
    assert store.writes == [{"remote.test": 8}, {"other.test": 3, "remote.test": 9}]
    assert await store.get_acked_position("remote.test") == 9
    assert await store.get_acked_position("other.test") == 3


@pytest_twisted.ensureDeferred
async def test_a_position_never_moves_down(db: Database) -> None:
    store = CountingStore(db)
    acks = AckedPositions(store, task.Clock())
    await store.set_acked_position("remote.test", 20)
    acks.record("remote.test", 15)
    acks.record("remote.test", 12)
    await acks.flush()
    assert await acks.get("remote.test") == 20
    assert await store.get_acked_position("remote.test") == 20


@pytest_twisted.ensureDeferred
async def test_what_is_recorded_is_written_at_stop(db: Database) -> None:
    store = CountingStore(db)
    store.gate = defer.Deferred()
    clock = task.Clock()
    acks = AckedPositions(store, clock)
    acks.record("remote.test", 4)
    clock.advance(WRITE_DELAY_S)  # being written, held back
    acks.record("remote.test", 6)
    installed_reactor().callLater(0.05, store.gate.callback, None)
    await acks.stop()
    assert await store.get_acked_position("remote.test") == 6
    assert clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_a_failed_write_is_tried_again(db: Database) -> None:
    store = CountingStore(db)
    clock = task.Clock()
    acks = AckedPositions(store, clock)
    failing: defer.Deferred[None] = defer.Deferred()
    store.gate = failing
    acks.record("remote.test", 4)
    clock.advance(WRITE_DELAY_S)
    failing.errback(RuntimeError("the database is down"))
    store.gate = None
    # Kept: read back, and written once the retry pause is over.
    assert await acks.get("remote.test") == 4
    assert await store.get_acked_position("remote.test") is None
    clock.advance(RETRY_S)

    async def written() -> bool:
        return await store.get_acked_position("remote.test") == 4

    await until_stored(written, "the position written on the retry")
    assert len(store.writes) == 2
