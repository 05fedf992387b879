"""Several rooms' events merged newest first, reading little from each room.

Each room is read through its own index range scan on ``events (room_nid,
stream_ordering)`` with a small ``LIMIT`` (one ``UNION ALL`` for every room that
needs reading at once).  A room is read again only when its next events could be
newer than everything already read, and each read of a room is twice the size of
its previous one: so a request reads about a few events per room plus, at most,
twice what it consumes — never a fixed batch from every room, and never the
history of a whole room.  A single query across rooms (``room_nid IN (…) ORDER BY
stream_ordering DESC``) gives no such bound: the planner either walks the whole
server's stream backwards or reads every event of the rooms and sorts them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from homeserver.storage.notifications import NotificationStore, RoomEvent

#: The largest read of one room in one query.
MAX_READ = 200


class MergedRooms:
    def __init__(
        self, store: NotificationStore, windows: Mapping[int, tuple[int, int]], first_read: int
    ) -> None:
        """``windows[room_nid] = (low, high)``: the room's events with ``low <
        stream_ordering <= high`` are merged.  ``first_read``: events read per room
        the first time (later reads double)."""
        self._store = store
        self._low = {nid: low for nid, (low, _) in windows.items()}
        #: Events at or above a room's floor have been read (or are outside it).
        self._floor = {nid: high + 1 for nid, (_, high) in windows.items()}
        self._read_size = dict.fromkeys(windows, max(1, min(first_read, MAX_READ)))
        self._buffers: dict[int, deque[RoomEvent]] = {nid: deque() for nid in windows}
        #: Rooms with nothing left to read below their buffer.
        self._exhausted = {nid for nid, (low, high) in windows.items() if low >= high}

    async def take(self, count: int) -> list[RoomEvent]:
        """The next ``count`` events, newest first; fewer only when none are left."""
        taken: list[RoomEvent] = []
        while len(taken) < count:
            heads = [
                (buffer[0].stream_ordering, nid) for nid, buffer in self._buffers.items() if buffer
            ]
            best = max(heads, default=None)
            # A room with nothing buffered may hide events newer than the best head.
            stale = [
                nid
                for nid, buffer in self._buffers.items()
                if not buffer
                and nid not in self._exhausted
                and (best is None or self._floor[nid] - 1 > best[0])
            ]
            if stale:
                await self._read(stale)
                continue
            if best is None:
                break
            taken.append(self._buffers[best[1]].popleft())
        return taken

    def exhausted(self) -> bool:
        """Whether every event of every window has been taken."""
        return all(not buffer and nid in self._exhausted for nid, buffer in self._buffers.items())

    async def _read(self, room_nids: list[int]) -> None:
        windows = {
            nid: (self._low[nid], self._floor[nid] - 1, self._read_size[nid]) for nid in room_nids
        }
        found = await self._store.events_before(windows)
        for nid, events in found.items():
            self._buffers[nid].extend(events)
            size = self._read_size[nid]
            if len(events) < size:
                self._exhausted.add(nid)
            else:
                self._floor[nid] = events[-1].stream_ordering
                self._read_size[nid] = min(size * 2, MAX_READ)
            if self._floor[nid] - 1 <= self._low[nid]:
                self._exhausted.add(nid)
