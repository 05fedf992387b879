"""Waking long-polling ``/sync`` requests the moment something relevant happens.

Writers call :meth:`Notifier.notify` after their change is committed, naming the
stream, its new position and who it concerns (users directly, or everyone in some
rooms).  A waiter registers for one user and their rooms; it is woken by the first
notification that concerns it, or by its timeout.  A short history of recent
notifications closes the race between "I computed an empty sync up to token T" and
"I started waiting": a waiter registered with an older token is woken at once if a
relevant notification after T is already in the history.

This is per process: with workers, Redis carries the notifications between
processes (docs/architecture.md).
"""

from __future__ import annotations

import collections
from collections.abc import Collection, Iterable

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from homeserver.streams.token import StreamKey, StreamToken

#: How many recent notifications are kept for late waiters.
_HISTORY = 2048


@attrs.frozen
class _Notification:
    key: StreamKey
    position: int
    users: frozenset[str]
    rooms: frozenset[str]


@attrs.define(eq=False)
class _Waiter:
    user_id: str
    rooms: frozenset[str]
    #: What the waiter has already seen.
    since: StreamToken
    deferred: defer.Deferred[None]

    def concerned_by(self, notification: _Notification) -> bool:
        return self.user_id in notification.users or not self.rooms.isdisjoint(notification.rooms)

    def covers(self, notification: _Notification) -> bool:
        """The waiter's token already includes the notified position (a notification
        that arrives late, after the waiter computed past it)."""
        return notification.position <= self.since.get(notification.key)


class Notifier:
    def __init__(self, reactor: IReactorTime, current: StreamToken) -> None:
        self._reactor = reactor
        self._current = current
        self._history: collections.deque[_Notification] = collections.deque()
        #: Per stream, the newest position that has dropped out of the history.
        self._forgotten_up_to: dict[StreamKey, int] = {}
        self._waiters_by_user: dict[str, set[_Waiter]] = collections.defaultdict(set)
        self._waiters_by_room: dict[str, set[_Waiter]] = collections.defaultdict(set)

    @property
    def current_token(self) -> StreamToken:
        """The newest position of every stream this process has been told about."""
        return self._current

    def notify(
        self,
        key: StreamKey,
        position: int,
        *,
        users: Iterable[str] = (),
        rooms: Iterable[str] = (),
    ) -> None:
        """Record that stream ``key`` reached ``position`` and wake those concerned."""
        if position > self._current.get(key):
            self._current = self._current.with_position(key, position)
        notification = _Notification(key, position, frozenset(users), frozenset(rooms))
        self._history.append(notification)
        if len(self._history) > _HISTORY:
            dropped = self._history.popleft()
            self._forgotten_up_to[dropped.key] = max(
                dropped.position, self._forgotten_up_to.get(dropped.key, 0)
            )
        woken: set[_Waiter] = set()
        for user_id in notification.users:
            woken.update(self._waiters_by_user.get(user_id, ()))
        for room_id in notification.rooms:
            woken.update(self._waiters_by_room.get(room_id, ()))
        for waiter in woken:
            if not waiter.covers(notification):
                self._wake(waiter)

    async def wait_for_changes(
        self, user_id: str, rooms: Collection[str], since: StreamToken, timeout_ms: int
    ) -> bool:
        """Wait until something after ``since`` concerns ``user_id`` or ``rooms``.

        Returns True if woken by a change (or one was already waiting in the
        history), False on timeout.
        """
        room_set = frozenset(rooms)
        waiter = _Waiter(user_id, room_set, since, defer.Deferred())
        if self._missed_change(waiter, since):
            return True
        if timeout_ms <= 0:
            return False
        self._waiters_by_user[user_id].add(waiter)
        for room_id in room_set:
            self._waiters_by_room[room_id].add(waiter)
        timer = self._reactor.callLater(timeout_ms / 1000, self._wake, waiter)
        woken_by_change = True
        try:
            await waiter.deferred
            woken_by_change = timer.active()
        except defer.CancelledError:
            woken_by_change = False
            raise
        finally:
            if timer.active():
                timer.cancel()
            self._forget(waiter)
        return woken_by_change

    def _missed_change(self, waiter: _Waiter, since: StreamToken) -> bool:
        if not self._current.is_after(since):
            return False
        # Changes older than the history cannot be checked: assume one concerns us.
        if any(since.get(key) < up_to for key, up_to in self._forgotten_up_to.items()):
            return True
        return any(
            notification.position > since.get(notification.key)
            and waiter.concerned_by(notification)
            for notification in self._history
        )

    def _wake(self, waiter: _Waiter) -> None:
        if not waiter.deferred.called:
            waiter.deferred.callback(None)

    def _forget(self, waiter: _Waiter) -> None:
        by_user = self._waiters_by_user.get(waiter.user_id)
        if by_user is not None:
            by_user.discard(waiter)
            if not by_user:
                del self._waiters_by_user[waiter.user_id]
        for room_id in waiter.rooms:
            by_room = self._waiters_by_room.get(room_id)
            if by_room is not None:
                by_room.discard(waiter)
                if not by_room:
                    del self._waiters_by_room[room_id]
