"""Token-bucket rate limiting, keyed by whatever the caller chooses (user, IP, action).

A bucket holds up to ``burst_count`` tokens and refills at ``per_second``; each
action takes one.  This is the same model, and the same config shape, as Synapse's
``rc_*`` settings, so operators' limits mean what they meant there.

spec: client-server-api/_index.md#rate-limiting
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from homeserver import errors
from homeserver.clock import Clock

#: Buckets that have refilled completely carry no information; they are dropped
#: once the table grows past this size, so memory stays bounded by active keys.
_PRUNE_THRESHOLD = 10_000


@attrs.frozen
class RateLimitConfig:
    per_second: float
    burst_count: int


@attrs.define
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, clock: Clock, config: RateLimitConfig) -> None:
        self._clock = clock
        self._config = config
        self._buckets: dict[Hashable, _Bucket] = {}

    def check(self, key: Hashable, *, cost: float = 1.0, update: bool = True) -> float:
        """Take ``cost`` tokens for ``key`` if it can; returns 0, or seconds to wait.

        With ``update=False`` nothing is taken: it only tells whether it would pass.
        """
        now = self._clock.time()
        rate = self._config.per_second
        capacity = float(self._config.burst_count)
        bucket = self._buckets.get(key)
        if bucket is None:
            tokens = capacity
        else:
            tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        if tokens >= cost:
            if update:
                if bucket is None:
                    self._maybe_prune(now)
                    self._buckets[key] = _Bucket(tokens - cost, now)
                else:
                    bucket.tokens = tokens - cost
                    bucket.updated = now
            return 0.0
        if rate <= 0:
            return float("inf")
        return (cost - tokens) / rate

    def ratelimit(self, key: Hashable, *, cost: float = 1.0) -> None:
        """Take a token or raise 429 ``M_LIMIT_EXCEEDED`` with the time to wait."""
        wait = self.check(key, cost=cost)
        if wait > 0:
            raise errors.limit_exceeded(wait)

    def _maybe_prune(self, now: float) -> None:
        if len(self._buckets) < _PRUNE_THRESHOLD:
            return
        rate = self._config.per_second
        capacity = self._config.burst_count
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * rate >= capacity
        ]
        for key in full:
            del self._buckets[key]
