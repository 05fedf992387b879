"""What the EDU handlers ask of rooms: which servers are in one, and whether a user
belongs to the server speaking for them.

Typing notifications arrive and leave every few seconds per typist, each needing the
servers of its room, so those are cached per room and dropped whenever the room's
state changes (:meth:`RoomServers.on_new_event`, hooked to the event path).  A read
racing a change cannot put an old answer back: a change marks the reads of its room
under way as stale, and a stale answer is returned but not kept.  Only reads under
way are tracked, so nothing grows with the number of rooms ever seen.

spec: server-server-api.md#edus
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from federation.protocols import JoinedServers
from homeserver.events.event import Event
from homeserver.identifiers import is_valid_room_id
from homeserver.util.caches import LruCache

#: Rooms whose servers are remembered.
_CACHED_ROOMS = 10_000


@attrs.define(eq=False)
class _Read:
    """A read of a room's servers under way; ``stale`` once the room changed."""

    stale: bool = False


class RoomServers:
    def __init__(self, *, server_name: str, source: JoinedServers) -> None:
        self._server_name = server_name
        self._source = source
        self._cache: LruCache[str, frozenset[str]] = LruCache(_CACHED_ROOMS)
        #: The reads under way per room (entries go when their last read ends).
        self._reads: dict[str, list[_Read]] = {}

    async def joined_servers(self, room_id: str) -> frozenset[str]:
        """The servers with a member joined in ``room_id`` now, ours included if so."""
        cached = self._cache.get(room_id)
        if cached is not None:
            return cached
        read = _Read()
        self._reads.setdefault(room_id, []).append(read)
        try:
            # A no-op on the store's own frozenset; the cache and the set
            # arithmetic below need one.
            servers = frozenset(await self._source.get_joined_servers(room_id))
        finally:
            under_way = self._reads[room_id]
            under_way.remove(read)
            if not under_way:
                del self._reads[room_id]
        if not read.stale:
            self._cache.set(room_id, servers)
        return servers

    async def other_servers(self, room_id: str) -> frozenset[str]:
        """The servers other than ours with a member joined in ``room_id``; none when
        we have no member joined there ourselves (we are not in the room)."""
        servers = await self.joined_servers(room_id)
        if self._server_name not in servers:
            return frozenset()
        return servers - {self._server_name}

    async def we_share(self, room_id: str, origin: str) -> bool:
        """Whether both ``origin`` and this server have a member joined in ``room_id``."""
        servers = await self.joined_servers(room_id)
        return origin in servers and self._server_name in servers

    def on_new_event(self, event: Event, _position: int) -> None:
        """``EventPath.on_new_event``: a state event may change who is in the room."""
        if event.is_state():
            for read in self._reads.get(event.room_id, ()):
                read.stale = True
            self._cache.invalidate(event.room_id)

    @property
    def reads_under_way(self) -> int:
        """Rooms with a read under way (what is tracked besides the cache)."""
        return len(self._reads)


def room_id_of(content: Mapping[str, Any]) -> str | None:
    room_id = content.get("room_id")
    return room_id if isinstance(room_id, str) and is_valid_room_id(room_id) else None
