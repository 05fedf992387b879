"""Which entities (rooms, users) changed after a stream position, from memory.

An incremental ``/sync`` asks "which of my rooms have events after my token?" and
"did my membership change?"; almost always the answer is "none" or "a few", and
asking the database every time is most of what a quiet sync costs.  The store that
writes a stream records each entity's latest position here as its transaction
commits — before the position can become visible to readers (streams/positions.py)
— so for any position at or above :attr:`floor` the cache knows every change a
reader can see.  Below the floor (changes from before this process started, or
forgotten to bound memory) it answers "unknown" and the caller asks the database.

Per process: each writer records its own writes; with several writers, each reader
would fill it from the replication stream (docs/architecture.md, the inventory).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

E = TypeVar("E", bound=Hashable)

#: Entities remembered before the oldest are forgotten (raising the floor).
DEFAULT_MAX_ENTITIES = 200_000


class StreamChangeCache(Generic[E]):
    def __init__(self, floor: int, *, max_entities: int = DEFAULT_MAX_ENTITIES) -> None:
        """``floor``: the stream position from which on every change is recorded."""
        self._floor = floor
        self._max_entities = max_entities
        self._latest: dict[E, int] = {}

    @property
    def floor(self) -> int:
        return self._floor

    def record(self, entity: E, position: int) -> None:
        if position > self._latest.get(entity, self._floor):
            self._latest[entity] = position
        if len(self._latest) > self._max_entities:
            self._forget_oldest_half()

    def changed_since(self, entities: Iterable[E], position: int) -> set[E] | None:
        """Those of ``entities`` changed after ``position``; None if unknown."""
        if position < self._floor:
            return None
        latest = self._latest
        return {entity for entity in entities if latest.get(entity, 0) > position}

    def has_changed_since(self, entity: E, position: int) -> bool | None:
        """Whether ``entity`` changed after ``position``; None if unknown."""
        if position < self._floor:
            return None
        return self._latest.get(entity, 0) > position

    def _forget_oldest_half(self) -> None:
        ordered = sorted(self._latest.items(), key=lambda item: item[1])
        cut = len(ordered) // 2
        self._floor = max(self._floor, ordered[cut - 1][1])
        self._latest = dict(ordered[cut:])
