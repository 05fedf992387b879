"""Token buckets, driven by a fake clock."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock as FakeReactor

from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.ratelimit import RateLimitConfig, RateLimiter


def limiter(per_second: float = 1.0, burst: int = 3) -> tuple[RateLimiter, FakeReactor]:
    reactor = FakeReactor()
    return RateLimiter(Clock(reactor), RateLimitConfig(per_second, burst)), reactor


def test_burst_is_allowed_then_refused() -> None:
    rl, _ = limiter(burst=3)
    assert [rl.check("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.check("k") == pytest.approx(1.0)


def test_tokens_refill_over_time() -> None:
    rl, reactor = limiter(per_second=0.5, burst=1)
    assert rl.check("k") == 0
    assert rl.check("k") == pytest.approx(2.0)
    reactor.advance(2.0)
    assert rl.check("k") == 0


def test_keys_are_independent() -> None:
    rl, _ = limiter(burst=1)
    assert rl.check("alice") == 0
    assert rl.check("bob") == 0
    assert rl.check("alice") > 0


def test_check_without_update_takes_nothing() -> None:
    rl, _ = limiter(burst=1)
    assert rl.check("k", update=False) == 0
    assert rl.check("k") == 0
    assert rl.check("k", update=False) > 0


def test_ratelimit_raises_429_with_wait_time() -> None:
    rl, _ = limiter(per_second=0.1, burst=1)
    rl.ratelimit("k")
    with pytest.raises(MatrixError) as raised:
        rl.ratelimit("k")
    assert raised.value.status == 429
    assert raised.value.errcode == "M_LIMIT_EXCEEDED"
    assert raised.value.to_json()["retry_after_ms"] == 10_000


def test_zero_rate_never_refills() -> None:
    rl, reactor = limiter(per_second=0, burst=1)
    rl.check("k")
    reactor.advance(1e6)
    assert rl.check("k") == float("inf")
