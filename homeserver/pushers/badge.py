"""The number on an app's badge: ``counts.unread`` of push-gateway-api.md.

Derived from the unread counts ``/sync`` shows (``unread/counter.py``) over the user's
joined rooms: with ``push.group_unread_count_by_room`` (Synapse's key, default true) the
number of rooms with unread notifications, else the number of notifications.

Counting covers every room of the user, so it is done at most once per delivery batch
(each kind asks once per :meth:`~homeserver.pushers.kinds.PusherKind.deliver`), and the
pushers of one user delivering at the same moment share one count: a caller arriving
while a count for that user is under way gets its result.  Nothing is kept after it.

spec: push-gateway-api.md (``counts.unread``: "The number of unread messages a user has
across all of the rooms they are a member of")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from homeserver.storage.events import EventStore
from homeserver.unread.counter import UnreadCounter

#: ``user_id -> counts.unread``: what kinds are given to read the badge.
BadgeSource = Callable[[str], Awaitable[int]]


class UnreadBadge:
    def __init__(self, counter: UnreadCounter, events: EventStore, *, group_by_room: bool) -> None:
        self._counter = counter
        self._events = events
        self._group_by_room = group_by_room
        #: User ID -> the callers waiting for the count under way.
        self._waiting: dict[str, list[defer.Deferred[int]]] = {}

    async def unread(self, user_id: str) -> int:
        mine: defer.Deferred[int] = defer.Deferred()
        waiting = self._waiting.get(user_id)
        if waiting is not None:
            waiting.append(mine)
        else:
            self._waiting[user_id] = [mine]
            # Not tied to this caller: its cancellation must not fail the others.
            defer.ensureDeferred(self._count(user_id)).addBoth(self._counted, user_id)
        return await mine

    def _counted(self, result: int | Failure, user_id: str) -> None:
        for waiter in self._waiting.pop(user_id, []):
            if waiter.called:  # cancelled meanwhile
                continue
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    async def _count(self, user_id: str) -> int:
        rooms = await self._events.get_rooms_for_user(user_id)
        if not rooms:
            return 0
        counts = (await self._counter.counts(user_id, rooms)).values()
        if self._group_by_room:
            return sum(1 for room in counts if room.notification_count)
        return sum(room.notification_count for room in counts)
