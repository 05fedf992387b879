"""A thread pool for the media repository's blocking work: file and object-store
I/O and image decoding, which must never run on the reactor thread.

Separate from the reactor's default pool (password hashing) and the database's
pools, so a burst of thumbnailing cannot delay logins or queries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from homeserver.reactor import IServerReactor

P = ParamSpec("P")
T = TypeVar("T")


class MediaThreads:
    def __init__(self, reactor: IServerReactor, *, max_threads: int = 4) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=max_threads, name="media")
        self._pool.start()
        reactor.addSystemEventTrigger("during", "shutdown", self.stop)

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``func(*args, **kwargs)`` in the pool; its result or exception."""
        result: T = await threads.deferToThreadPool(
            self._reactor, self._pool, func, *args, **kwargs
        )
        return result

    def stop(self) -> None:
        """Stop the pool once its queued work is done (safe to call again)."""
        if self._pool.started:
            self._pool.stop()
