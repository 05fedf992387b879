"""Run async work one at a time per key (e.g. per room), first come first served."""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

from twisted.internet import defer


class Linearizer:
    def __init__(self) -> None:
        self._locks: dict[Hashable, defer.DeferredLock] = {}

    @asynccontextmanager
    async def queue(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = defer.DeferredLock()
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()
            # Drop idle locks so the table holds only keys with work in flight.
            if not lock.locked and not lock.waiting and self._locks.get(key) is lock:
                del self._locks[key]
