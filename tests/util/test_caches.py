"""The LRU cache: bounded by entries, or by the weight of what it holds."""

from __future__ import annotations

from homeserver.util.caches import LruCache


def test_least_recently_used_entry_goes_first() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1
    cache.set("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_weighted_cache_is_bounded_by_total_weight_not_count() -> None:
    cache: LruCache[str, list[int]] = LruCache(100, weigh=len)
    for name in "abcdefghij":
        cache.set(name, [0])
    assert len(cache) == 10 and cache.weight == 10
    cache.set("huge", [0] * 95)
    # Room was made by dropping the oldest small entries only.
    assert cache.weight <= 100
    assert cache.get("huge") is not None and cache.get("j") is not None
    assert cache.get("a") is None


def test_an_entry_heavier_than_the_bound_is_kept_alone() -> None:
    cache: LruCache[str, list[int]] = LruCache(10, weigh=len)
    cache.set("small", [0])
    cache.set("huge", [0] * 50)
    assert len(cache) == 1 and cache.get("huge") is not None


def test_replacing_and_invalidating_keep_the_weight_right() -> None:
    cache: LruCache[str, list[int]] = LruCache(100, weigh=len)
    cache.set("a", [0] * 10)
    cache.set("a", [0] * 3)
    assert cache.weight == 3
    cache.invalidate("a")
    assert cache.weight == 0 and len(cache) == 0
