"""Typing notifications: who is typing in which room, held in memory with timeouts.

Typing is ephemeral: nothing is written to the database.  Each change of a room's
typing set (someone starts, stops, or their timeout runs out) advances this
process's ``typing`` stream by one and wakes /sync through the notifier.  The stream
starts at the clock's time in milliseconds, so positions keep increasing across a
restart and a client's old token never looks ahead of the server; a ``from``
position ahead of the stream anyway is answered with the full current state, which
is always safe because clients replace their typing list with each ``m.typing``.

Timeouts are capped at :data:`MAX_TIMEOUT_MS` (30 s, the longest re-send interval the
spec recommends to clients), so a client that vanishes stops "typing" soon.

Users of other servers type too (federation, ``federation/edus/typing.py``): their
server's ``m.typing`` EDUs arrive through :meth:`TypingHandler.set_remote_typing`, with
the longer :data:`REMOTE_TIMEOUT_MS` since remote servers repeat a typing notification
less often than clients do.  Local users' typing goes to the ``on_local_typing``
callbacks (start, each repeat, stop and time-out), which tell the room's other servers.

With several processes, typing must be routed to one of them (docs/architecture.md).

spec: client-server-api/_index.md#typing-notifications, #put_matrixclientv3roomsroomidtypinguserid
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from homeserver import errors
from homeserver.streams.notifier import Notifier

#: The longest a user is shown as typing without a new request.
MAX_TIMEOUT_MS = 30_000
#: How long a remote user is shown typing after their server said so: servers repeat
#: it every 40 s or less (Synapse: ``FEDERATION_PING_INTERVAL``; its timeout is 60 s too).
REMOTE_TIMEOUT_MS = 60_000

#: ``on_local_typing`` callback: (room ID, user ID, typing).
LocalTypingCallback = Callable[[str, str, bool], None]


class TypingHandler:
    def __init__(
        self,
        reactor: IReactorTime,
        notifier: Notifier,
        is_joined: Callable[[str, str], Awaitable[bool]],
    ) -> None:
        """``reactor`` provides ``seconds()`` and ``callLater`` (the real reactor, or a
        ``twisted.internet.task.Clock`` in tests); ``is_joined(user_id, room_id)``."""
        self._reactor = reactor
        self._notifier = notifier
        self._is_joined = is_joined
        #: Called with the user ID when someone starts typing (presence activity).
        self.on_activity: list[Callable[[str], None]] = []
        #: Called with (room ID, user ID, typing) on each request of a local user
        #: (repeats of ``typing: true`` included) and when their typing times out.
        self.on_local_typing: list[LocalTypingCallback] = []
        #: (room ID, user ID) of the remote users typing now (their time-outs tell
        #: nobody else: their own server does).
        self._remote: set[tuple[str, str]] = set()
        self._position = int(reactor.seconds() * 1000)
        #: room ID -> user ID -> the timer that ends their typing.
        self._typing: dict[str, dict[str, IDelayedCall]] = {}
        #: room ID -> stream position of its last change.
        self._changed_at: dict[str, int] = {}

    def current_position(self) -> int:
        return self._position

    async def set_typing(
        self, user_id: str, room_id: str, typing: bool, timeout_ms: int = 0
    ) -> None:
        """Start (for ``timeout_ms``, capped) or stop ``user_id`` typing in ``room_id``.

        403 ``M_FORBIDDEN`` if the user is not joined to the room.
        """
        if not await self._is_joined(user_id, room_id):
            raise errors.forbidden("You are not joined to this room")
        for local in self.on_local_typing:
            local(room_id, user_id, typing)
        if typing:
            for callback in self.on_activity:
                callback(user_id)
        self._set(room_id, user_id, typing, min(max(timeout_ms, 0), MAX_TIMEOUT_MS))

    def set_remote_typing(self, user_id: str, room_id: str, typing: bool) -> None:
        """Another server says its user ``user_id`` started or stopped typing in
        ``room_id`` (the caller checked the server speaks for the user, who is joined)."""
        if typing:
            self._remote.add((room_id, user_id))
        self._set(room_id, user_id, typing, REMOTE_TIMEOUT_MS)

    def _set(self, room_id: str, user_id: str, typing: bool, timeout_ms: int) -> None:
        users = self._typing.get(room_id, {})
        timer = users.get(user_id)
        if not typing:
            if timer is not None:
                timer.cancel()
                self._remove(room_id, user_id)
            return
        delay = timeout_ms / 1000
        if timer is not None:
            # Already typing: only the deadline moves; nobody needs telling.
            timer.reset(delay)
            return
        self._typing.setdefault(room_id, {})[user_id] = self._reactor.callLater(
            delay, self._expire, room_id, user_id
        )
        self._changed(room_id)

    def typing_events(
        self, room_ids: Collection[str], from_position: int
    ) -> dict[str, dict[str, Any]]:
        """room ID -> ``m.typing`` ephemeral event for each room in ``room_ids`` whose
        typing set changed after ``from_position`` (0: each room where someone types)."""
        full = from_position == 0 or from_position > self._position
        events: dict[str, dict[str, Any]] = {}
        for room_id in room_ids:
            users = self._typing.get(room_id)
            if full:
                if not users:
                    continue
            elif self._changed_at.get(room_id, 0) <= from_position:
                continue
            events[room_id] = {"type": "m.typing", "content": {"user_ids": sorted(users or ())}}
        return events

    def _expire(self, room_id: str, user_id: str) -> None:
        if (room_id, user_id) not in self._remote:
            for local in self.on_local_typing:
                local(room_id, user_id, False)
        self._remove(room_id, user_id)

    def _remove(self, room_id: str, user_id: str) -> None:
        users = self._typing.get(room_id)
        if users is None or users.pop(user_id, None) is None:
            return
        self._remote.discard((room_id, user_id))
        if not users:
            del self._typing[room_id]
        self._changed(room_id)

    def _changed(self, room_id: str) -> None:
        self._position += 1
        self._changed_at[room_id] = self._position
        self._notifier.notify("typing", self._position, rooms=[room_id])
