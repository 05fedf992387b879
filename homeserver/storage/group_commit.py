"""Group commit: writes that arrive while a transaction runs share the next one.

Each caller submits one request and waits for its own result.  While a transaction
is in flight, new requests queue; when it ends, everything queued goes into one
transaction (one commit, one fsync), in submission order.  A caller's request is
acknowledged only after the transaction holding it has committed, so group commit
never weakens durability.  If a shared transaction fails, its requests are retried
one by one, so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from twisted.internet import defer

Req = TypeVar("Req")
Res = TypeVar("Res")

#: Requests in one transaction at most (bounds its size and the time it holds locks).
MAX_GROUP = 64


class GroupCommitter(Generic[Req, Res]):
    """Runs ``write(requests) -> results`` (one transaction, results in order) over
    whatever requests are waiting."""

    def __init__(
        self,
        write: Callable[[Sequence[Req]], Awaitable[Sequence[Res]]],
        *,
        max_group: int = MAX_GROUP,
    ) -> None:
        self._write = write
        self._max_group = max_group
        self._queue: list[tuple[Req, defer.Deferred[Res]]] = []
        self._draining = False

    async def submit(self, request: Req) -> Res:
        done: defer.Deferred[Res] = defer.Deferred()
        self._queue.append((request, done))
        if not self._draining:
            defer.ensureDeferred(self._drain())
        return await done

    async def _drain(self) -> None:
        self._draining = True
        try:
            while self._queue:
                group = self._queue[: self._max_group]
                del self._queue[: self._max_group]
                await self._run(group)
        finally:
            self._draining = False

    async def _run(self, group: list[tuple[Req, defer.Deferred[Res]]]) -> None:
        try:
            results = await self._write([request for request, _ in group])
        except Exception:
            if len(group) == 1:
                group[0][1].errback()
                return
            # Find the culprit: each request alone, so the others still land.
            for item in group:
                await self._run([item])
            return
        for (_, done), result in zip(group, results, strict=True):
            done.callback(result)
