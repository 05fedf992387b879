"""DestinationStore on both engines: timings set, replaced, read back, cleared."""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.destinations import DestinationStore, RetryTimings


@pytest_twisted.ensureDeferred
async def test_retry_timings_round_trip(db: Database) -> None:
    store = DestinationStore(db)
    assert await store.get_retry_timings("a.test") is None
    await store.set_retry_timings("a.test", RetryTimings(1000, 1000, 600_000))
    await store.set_retry_timings("b.test", RetryTimings(5, 6, 7))
    assert await store.get_retry_timings("a.test") == RetryTimings(1000, 1000, 600_000)
    assert (await store.get_retry_timings("a.test")).retry_at == 601_000  # type: ignore[union-attr]

    # A later failure replaces the row (values beyond 32 bits: timestamps in ms).
    later = RetryTimings(1000, 1_700_000_000_000, 7 * 86_400_000)
    await store.set_retry_timings("a.test", later)
    assert await store.get_retry_timings("a.test") == later
    assert await store.get_failing_destinations() == [
        ("a.test", later),
        ("b.test", RetryTimings(5, 6, 7)),
    ]

    await store.clear_retry_timings("a.test")
    await store.clear_retry_timings("never.test")
    assert await store.get_retry_timings("a.test") is None
    assert [name for name, _ in await store.get_failing_destinations()] == ["b.test"]
