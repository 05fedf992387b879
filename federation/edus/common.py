"""What the EDU modules need of the rest of federation, named as protocols, and how
they run their background sends.

spec: server-server-api.md#edus
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping
from typing import Any, Protocol

from twisted.internet import defer

logger = logging.getLogger(__name__)


class EduSink(Protocol):
    """``federation.sender.FederationSender``: ephemeral EDUs for the next transaction
    to a destination; a later one with the same ``coalesce_key`` replaces an unsent one."""

    def send_edu(
        self,
        destination: str,
        edu_type: str,
        content: Mapping[str, Any],
        *,
        coalesce_key: Hashable | None = None,
    ) -> None: ...


#: ``is_joined(user_id, room_id)``: joined in the room's current state.
IsJoined = Callable[[str, str], Awaitable[bool]]


class BackgroundTasks:
    """The sends and lookups the EDU modules start without waiting for them (EDUs are
    best-effort: a failure is logged), tracked so that :meth:`stop` waits for those
    under way -- none is left touching the database after shutdown -- and refuses
    new ones."""

    def __init__(self) -> None:
        self._running: set[defer.Deferred[None]] = set()
        self._stopped = False

    def run(self, work: Coroutine[Any, Any, None], what: str) -> None:
        if self._stopped:
            work.close()  # never started: nothing to wait for
            return

        async def guarded() -> None:
            try:
                await work
            except Exception:
                logger.exception("Could not %s", what)

        running = defer.ensureDeferred(guarded())
        if running.called:
            return  # finished without waiting for anything
        self._running.add(running)
        running.addBoth(self._done, running)

    def _done(self, result: object, running: defer.Deferred[None]) -> object:
        self._running.discard(running)
        return None

    @property
    def running(self) -> int:
        return len(self._running)

    async def stop(self) -> None:
        self._stopped = True
        while self._running:
            await defer.DeferredList(list(self._running))
