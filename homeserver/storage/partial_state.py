"""Rooms joined with partial state ("faster joins"): SQL only.  Owns
``partial_state_rooms``.

A server joining with ``omit_members`` gets the room's state without most of its
membership events and fetches them afterwards.  Until then the room's state groups
since the join lack those members.  Completing the state adds them to the
snapshots those groups are built on — the one time a written state group changes.
Every group written since the join is the partial state or derived from it, a
complete state another server gave for an event after the join (a gap), or the
state of history before the join backfilled meanwhile.  History's groups are
recorded as they are written (``partial_state_history_groups``) and left alone: a
member who joined later does not belong in them.  The partial ones lacked exactly
the omitted keys, and a key of a room's state stays in every later state of it, so
what the full state at the join holds for a key a snapshot lacks is what the
snapshot should have held (a complete later state lacks none of them).  This
avoids rewriting every event's state groups.

spec: data/api/server-server/joins-v2.yaml (omit_members, members_omitted,
servers_in_room)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import attrs

from homeserver.events.event import StateKey
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore
from homeserver.storage.transaction import Transaction
from homeserver.util.caches import LruCache

#: Rooms whose partial-or-not answer is remembered (per process; see the class).
CACHE_SIZE = 10_000


@attrs.frozen
class PartialStateRoom:
    room_id: str
    #: Our join event: the full state is fetched as of it.
    join_event_id: str
    #: The server the join went through (asked first for the full state).
    joined_via: str
    #: The servers with joined members before the join (``servers_in_room``).
    servers_in_room: frozenset[str]


@attrs.frozen
class _NotPartial:
    """Cached answer for a room with its full state (LruCache stores no None)."""


_FULL = _NotPartial()


class PartialStateStore:
    """Which rooms are partial, and completing them.

    The answer per room is cached in this process: rows are written and removed only
    by the process that writes the room's events (the event path's writer), which
    updates its cache as it does; another process reads the table (its cache entry
    is dropped on the room's completion notice once processes are split).
    """

    def __init__(self, database: Database, *, state: StateStore, events: EventStore) -> None:
        self._db = database
        self._state = state
        self._events = events
        self._rooms: LruCache[str, PartialStateRoom | _NotPartial] = LruCache(CACHE_SIZE)
        #: Bumped by every write: a read that overlapped one is not cached.
        self._generation = 0

    async def get(self, room_id: str) -> PartialStateRoom | None:
        """The room's partial-state record; None when its state is complete (or the
        room unknown)."""
        cached = self._rooms.get(room_id)
        if cached is not None:
            return cached if isinstance(cached, PartialStateRoom) else None
        generation = self._generation
        rows = await self._db.execute_read(
            "get_partial_state_room",
            "SELECT room_id, join_event_id, joined_via, servers_in_room"
            " FROM partial_state_rooms WHERE room_id = ?",
            room_id,
        )
        found = _record(rows[0]) if rows else None
        if generation == self._generation:
            self._rooms.set(room_id, found or _FULL)
        return found

    async def is_partial(self, room_id: str) -> bool:
        return await self.get(room_id) is not None

    async def servers_while_partial(self, room_id: str) -> frozenset[str]:
        """The servers in the room at our partial join while it is partial (they
        must hear of our events although its member list does not name them);
        empty once it is complete."""
        room = await self.get(room_id)
        return frozenset() if room is None else room.servers_in_room

    async def all_rooms(self) -> list[PartialStateRoom]:
        """Every room still partial (a restart resumes their fetches)."""
        rows = await self._db.execute_read(
            "all_partial_state_rooms",
            "SELECT room_id, join_event_id, joined_via, servers_in_room"
            " FROM partial_state_rooms ORDER BY created_ts",
        )
        return [_record(row) for row in rows]

    async def mark(self, room: PartialStateRoom, now_ms: int) -> None:
        """Record a partial join before it is stored: a crash between the two leaves a
        row for a room the fetch then finds we are not in (and removes)."""
        await self._db.execute(
            "mark_partial_state_room",
            "INSERT INTO partial_state_rooms"
            " (room_id, join_event_id, joined_via, servers_in_room, created_ts)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id) DO UPDATE SET"
            " join_event_id = excluded.join_event_id, joined_via = excluded.joined_via,"
            " servers_in_room = excluded.servers_in_room, created_ts = excluded.created_ts",
            room.room_id,
            room.join_event_id,
            room.joined_via,
            json.dumps(sorted(room.servers_in_room)),
            now_ms,
        )
        self._generation += 1
        self._rooms.invalidate(room.room_id)

    async def unmark(self, room_id: str, join_event_id: str | None = None) -> None:
        """Forget a partial join that was not stored, or a room we are no longer in
        (only the record of ``join_event_id`` when given: a newer join's stays)."""
        if join_event_id is None:
            await self._db.execute(
                "unmark_partial_state_room",
                "DELETE FROM partial_state_rooms WHERE room_id = ?",
                room_id,
            )
        else:
            await self._db.execute(
                "unmark_partial_state_join",
                "DELETE FROM partial_state_rooms WHERE room_id = ? AND join_event_id = ?",
                room_id,
                join_event_id,
            )
        self._generation += 1
        self._rooms.invalidate(room_id)

    async def complete(
        self,
        room_id: str,
        room_nid: int,
        join_group: int,
        missing: Mapping[StateKey, str],
        *,
        join_event_id: str | None = None,
    ) -> list[str]:
        """Add ``missing`` (the full state at the join less what the partial state
        held) to the room's state since the join, and end its partial state, in one
        transaction.  ``join_group`` is a state group of the join (its state before
        or after).  The room's membership index gets each added member whose entry
        is still the room's current one.  Returns those members' user IDs.
        ``join_event_id``: complete only if the record is still of that join (a newer
        join's record is left for its own fetch).
        """

        def complete_txn(txn: Transaction) -> tuple[list[int], list[str]]:
            touched = self._state.complete_partial_groups_txn(txn, room_nid, join_group, missing)
            txn.execute("SELECT current_state_group FROM rooms WHERE room_nid = ?", (room_nid,))
            row = txn.fetchone()
            members: list[str] = []
            if row is not None and row[0] is not None:
                current_group = int(row[0])
                current = self._state.read_keys_txn(txn, current_group, list(missing))
                in_effect = {
                    key: event_id
                    for key, event_id in missing.items()
                    if current.get(key) == event_id and key[0] == "m.room.member"
                }
                self._events.move_current_state_txn(txn, room_nid, current_group, in_effect)
                members = [state_key for _type, state_key in in_effect]
            if join_event_id is None:
                txn.execute("DELETE FROM partial_state_rooms WHERE room_id = ?", (room_id,))
            else:
                txn.execute(
                    "DELETE FROM partial_state_rooms WHERE room_id = ? AND join_event_id = ?",
                    (room_id, join_event_id),
                )
            return touched, members

        touched, members = await self._db.run_interaction("complete_partial_state", complete_txn)
        self._state.forget_groups(touched)
        self._generation += 1
        self._rooms.invalidate(room_id)
        return members


def _record(row: Sequence[object]) -> PartialStateRoom:
    room_id, join_event_id, joined_via, servers = row
    listed = json.loads(str(servers))
    return PartialStateRoom(
        room_id=str(room_id),
        join_event_id=str(join_event_id),
        joined_via=str(joined_via),
        servers_in_room=frozenset(s for s in listed if isinstance(s, str)),
    )
