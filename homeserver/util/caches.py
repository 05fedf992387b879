"""A small LRU cache for immutable values (state groups, events)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """Least recently used first out, bounded by ``max_weight``: the number of
    entries, or with ``weigh`` the sum of the entries' weights (e.g. a state map's
    size), so a few huge values cannot hold far more memory than many small ones."""

    def __init__(self, max_weight: int, *, weigh: Callable[[V], int] | None = None) -> None:
        self._max_weight = max_weight
        self._weigh = weigh
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._weight = 0

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def set(self, key: K, value: V) -> None:
        weight = 1 if self._weigh is None else self._weigh(value)
        old = self._entries.pop(key, None)
        if old is not None:
            self._weight -= old[1]
        self._entries[key] = (value, weight)
        self._weight += weight
        # The newest entry stays even if it alone is over the bound.
        while self._weight > self._max_weight and len(self._entries) > 1:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._weight -= evicted

    def invalidate(self, key: K) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._weight -= old[1]

    def clear(self) -> None:
        self._entries.clear()
        self._weight = 0

    @property
    def weight(self) -> int:
        return self._weight

    def __len__(self) -> int:
        return len(self._entries)
