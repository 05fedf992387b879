"""Backing off from servers that do not answer.

spec: server-server-api.md does not say how to treat unreachable servers; deployed
servers (Synapse's ``destinations`` table) wait an interval after a failure that grows
with each failed retry, up to a ceiling, and forget it at the first success.  This
module is that rule; the state is in ``homeserver/storage/destinations.py`` so that a
restart does not retry every dead server at once.

What counts as a failure is the client's decision (``http.py``): no answer at all
(DNS, connection, TLS, timeout) or a 5xx/429 answer.  Any other HTTP answer — a 4xx
included — means the server is up.

Only a *retry* grows the interval: a failure recorded while the destination is
already being backed off (a request that was in flight, or one made with
``ignore_backoff``) keeps the current interval, so ten concurrent requests failing
together count as one failure, not ten doublings.

Per-process state: an LRU cache in front of the table (destination → timings, or
"known not failing").  Another process's writes are seen once the entry is evicted or
this process writes it; a stale "not failing" only costs one request that fails.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from homeserver.clock import Clock
from homeserver.storage.destinations import DestinationStore, RetryTimings
from homeserver.util.caches import LruCache

logger = logging.getLogger(__name__)

#: Destinations whose state is kept in memory.  Each entry is a few hundred bytes;
#: a server federating with more destinations than this reads the table for the rest.
CACHE_SIZE = 20_000

#: Each interval is stretched by a random factor in [1, 1 + JITTER), so destinations
#: that failed together (a network outage) are not all retried in the same instant.
JITTER = 0.25


class _NotFailing:
    """The cache's marker for "looked up: no backoff state" (None means "not cached")."""


_NOT_FAILING = _NotFailing()


class DestinationBackoff:
    def __init__(
        self,
        store: DestinationStore,
        clock: Clock,
        *,
        min_interval_ms: int,
        multiplier: float,
        max_interval_ms: int,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._min_interval_ms = min_interval_ms
        self._multiplier = multiplier
        self._max_interval_ms = max_interval_ms
        self._rng = rng or random.Random()
        self._cache: LruCache[str, RetryTimings | _NotFailing] = LruCache(CACHE_SIZE)
        #: Called with a destination's name when it answers after having failed (the
        #: sender catches it up).  Called on the reactor; must not raise.
        self.on_destination_up: list[Callable[[str], None]] = []

    async def is_backing_off(self, destination: str) -> int | None:
        """When ``destination`` may be tried again (ms since the epoch), or None if it
        may be tried now."""
        timings = await self._timings(destination)
        if timings is None:
            return None
        retry_at = timings.retry_at
        return retry_at if self._clock.time_msec() < retry_at else None

    async def get_timings(self, destination: str) -> RetryTimings | None:
        """The stored backoff state of ``destination`` (None when it is not failing)."""
        return await self._timings(destination)

    async def record_failure(self, destination: str) -> None:
        now = self._clock.time_msec()
        previous = await self._timings(destination)
        if previous is None:
            interval = self._min_interval_ms
            failure_ts = now
        elif now < previous.retry_at:
            # Already backing off: this failure is not a retry (see the module doc).
            return
        else:
            interval = int(previous.retry_interval * self._multiplier)
            failure_ts = previous.failure_ts
        interval = min(self._max_interval_ms, int(interval * (1 + self._rng.random() * JITTER)))
        interval = max(interval, self._min_interval_ms)
        timings = RetryTimings(failure_ts=failure_ts, retry_last_ts=now, retry_interval=interval)
        logger.info(
            "Destination %s failed; not retrying for %d s (failing since %d)",
            destination,
            interval // 1000,
            failure_ts,
        )
        await self._store.set_retry_timings(destination, timings)
        self._cache.set(destination, timings)

    async def record_success(self, destination: str) -> None:
        previous = await self._timings(destination)
        if previous is None:
            return  # The common case: no write.
        await self._store.clear_retry_timings(destination)
        self._cache.set(destination, _NOT_FAILING)
        logger.info("Destination %s is up again", destination)
        for callback in list(self.on_destination_up):
            try:
                callback(destination)
            except Exception:
                logger.exception("on_destination_up callback failed for %s", destination)

    async def _timings(self, destination: str) -> RetryTimings | None:
        cached = self._cache.get(destination)
        if cached is None:
            stored = await self._store.get_retry_timings(destination)
            cached = _NOT_FAILING if stored is None else stored
            self._cache.set(destination, cached)
        return None if isinstance(cached, _NotFailing) else cached
