"""Which events notified a user, with what actions, and whether they have read them.

Nothing is stored per member per message (DESIGN.md "Speed by design"), so the list
is computed when asked: the user's rooms' events are read newest first and run
through their push rules exactly as the unread badge counts do
(:mod:`homeserver.unread.counter`): the user's resolved rules, the room's facts
(power levels, the user's display name) and joined member count as they are now;
events sent by the user, rejected, soft-failed and outlier events never count, nor
those of ignored users.  Only events sent while the user was joined count (the
badge counts from the join too), which history visibility always lets them see;
in a room they left, events up to the leave.

``read``: an event is read when it is at or before the user's read mark for its
thread — the newest of a later join, their unthreaded ``m.read``/``m.read.private``
receipts, their threaded receipts for that thread and their own latest event in it —
the same rule as the counter's.

Work per request is bounded: at most :data:`MAX_SCANNED` events are looked at —
every one counts, including those skipped unread (own, ignored, from before a join)
— and a page cut short by that carries a token to continue from, so a client paging
through a quiet history is never answered with a slow request.  The rooms are
merged newest first reading a few events per room at a time
(:mod:`homeserver.notifications.merge`), and events are loaded in slices no bigger
than the budget left.

The email digest reuses :meth:`NotificationFinder.read_events`.

spec: client-server-api/modules/push.md (``GET /notifications``),
client-server-api/_index.md#receiving-notifications, #threaded-read-receipts
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from homeserver.accountdata.handler import AccountDataHandler
from homeserver.events.event import Event
from homeserver.notifications.merge import MergedRooms
from homeserver.push.evaluator import Actions
from homeserver.push.handler import PushRulesHandler
from homeserver.push.room_facts import RoomFacts, read_room_facts
from homeserver.receipts.handler import RECEIPT_TYPES
from homeserver.receipts.threads import MAIN_THREAD, direct_thread
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.visibility import HistoryVisibilityFilter
from homeserver.storage.events import EventStore
from homeserver.storage.notifications import NotificationStore
from homeserver.storage.receipts import UNTHREADED
from homeserver.storage.timeline import MembershipRow, TimelineStore
from homeserver.storage.unread import UnreadStore

#: Events looked at per request at most; then the page ends with a ``next_token``.
MAX_SCANNED = 1000
#: Memberships whose rooms are listed: joined, and left (up to the leave).
_LISTED = frozenset({"join", "leave", "ban"})


@attrs.frozen
class Notification:
    room_id: str
    event: Event
    position: int
    actions: Actions
    read: bool


@attrs.frozen
class NotificationPage:
    notifications: list[Notification]
    #: Continue strictly before this stream position; None: nothing older.
    next_before: int | None


@attrs.frozen
class _Room:
    row: MembershipRow
    room_version: str
    state_group: int | None
    #: (position, membership) of the user's membership events, oldest first.
    history: list[tuple[int, str]]

    def joined_at(self, position: int) -> bool:
        membership = None
        for at, value in self.history:
            if at >= position:
                break
            membership = value
        return membership == "join"

    def joined_after(self, position: int) -> bool:
        return any(at > position and value == "join" for at, value in self.history)

    def window(self, top: int) -> tuple[int, int] | None:
        """(after, up to) the stream positions that may have notified: from the first
        join to the leave (or ``top``); None if there are none."""
        first_join = next((at for at, value in self.history if value == "join"), None)
        high = top if self.row.membership == "join" else min(top, self.row.stream_ordering)
        if first_join is None or first_join >= high:
            return None
        return first_join, high


class NotificationFinder:
    def __init__(
        self,
        *,
        store: NotificationStore,
        unread: UnreadStore,
        events: EventStore,
        timeline: TimelineStore,
        state: RoomStateReader,
        visibility: HistoryVisibilityFilter,
        push_rules: PushRulesHandler,
        account_data: AccountDataHandler,
        max_scanned: int = MAX_SCANNED,
    ) -> None:
        self._max_scanned = max_scanned
        self._store = store
        self._unread = unread
        self._events = events
        self._timeline = timeline
        self._state = state
        self._visibility = visibility
        self._push_rules = push_rules
        self._account_data = account_data

    async def page(
        self, user_id: str, *, before: int | None, limit: int, only_highlight: bool
    ) -> NotificationPage:
        """Up to ``limit`` notifications strictly before stream position ``before``
        (None: the newest), newest first."""
        current = await self._events.get_max_stream_ordering()
        top = current if before is None else min(before - 1, current)
        rooms = await self._rooms(user_id, top)
        windows = {nid: w for nid, room in rooms.items() if (w := room.window(top)) is not None}
        # A first read of a few events per room: most pages end in the newest rooms.
        first_read = min(self._max_scanned, 2 * limit) // max(1, len(windows))
        merged = MergedRooms(self._store, windows, first_read=first_read)
        ignored = await self._account_data.ignored_users(user_id)
        evaluator = await self._push_rules.evaluator(user_id)
        facts: dict[int, RoomFacts] = {}
        members: dict[int, int] = {}
        found: list[tuple[_Room, Event, int, Actions]] = []
        scanned = 0
        cursor: int | None = None
        left_in_batch = False
        # Slices start at what is still wanted and grow while events do not notify.
        growth = 1
        while scanned < self._max_scanned and len(found) < limit:
            budget = self._max_scanned - scanned
            batch = await merged.take(min(budget, max(limit - len(found), growth)))
            growth *= 2
            if not batch:
                break
            wanted = [
                e
                for e in batch
                if e.sender != user_id
                and e.sender not in ignored
                and rooms[e.room_nid].joined_at(e.stream_ordering)
            ]
            loaded = await self._events.get_events([e.event_id for e in wanted])
            unknown = {e.room_nid for e in wanted if e.room_nid not in members}
            if unknown:
                members.update(await self._unread.joined_member_counts(unknown))
            # Every event taken counts against the budget, loaded or skipped.
            for index, scanned_event in enumerate(batch):
                if scanned >= self._max_scanned or len(found) >= limit:
                    left_in_batch = index < len(batch)
                    break
                scanned += 1
                cursor = scanned_event.stream_ordering
                event = loaded.get(scanned_event.event_id)
                if event is None:
                    continue
                nid = scanned_event.room_nid
                room = rooms[nid]
                if nid not in facts:
                    facts[nid] = await read_room_facts(
                        self._state, user_id, room.room_version, room.state_group
                    )
                context = facts[nid].context(
                    user_id, room.row.room_id, event.sender, members.get(nid, 0)
                )
                actions = evaluator.evaluate(event.pdu, context)
                if actions.notify and (actions.highlight or not only_highlight):
                    found.append((room, event, cursor, actions))
        visible = await self._visible(user_id, found, ignored)
        read = await self._read_flags(user_id, [(room, event, at) for room, event, at, _ in found])
        notifications = [
            Notification(room.row.room_id, event, at, actions, read[event.event_id])
            for room, event, at, actions in found
            if event.event_id in visible
        ]
        cut_short = scanned >= self._max_scanned or len(found) >= limit
        more = cursor is not None and cut_short and (left_in_batch or not merged.exhausted())
        return NotificationPage(notifications, cursor if more else None)

    async def read_events(
        self, user_id: str, events: Sequence[tuple[str, Event]]
    ) -> dict[str, bool]:
        """event ID -> whether ``user_id`` has read it, for ``(room ID, event)`` pairs
        (the digest drops what was read since it was queued)."""
        if not events:
            return {}
        current = await self._events.get_max_stream_ordering()
        rooms = await self._rooms(user_id, current)
        by_id = {room.row.room_id: room for room in rooms.values()}
        placed = []
        unknown = []
        for room_id, event in events:
            room = by_id.get(room_id)
            position = event.internal.stream_ordering
            if room is None or position is None:
                unknown.append(event.event_id)
            else:
                placed.append((room, event, position))
        flags = await self._read_flags(user_id, placed)
        # A room the user is no longer in: nothing left to tell them about.
        flags.update(dict.fromkeys(unknown, True))
        return flags

    async def _rooms(self, user_id: str, top: int) -> dict[int, _Room]:
        rows = [
            row
            for row in await self._timeline.get_memberships_for_user(user_id)
            if row.membership in _LISTED and not row.forgotten
        ]
        if not rows:
            return {}
        history = await self._timeline.get_membership_history(
            user_id, [row.room_id for row in rows], lowest=0, highest=max(top, 0)
        )
        records = await self._store.rooms([row.room_nid for row in rows])
        return {
            row.room_nid: _Room(row, *records[row.room_nid], history.get(row.room_id, []))
            for row in rows
            if row.room_nid in records
        }

    async def _visible(
        self,
        user_id: str,
        found: Sequence[tuple[_Room, Event, int, Actions]],
        ignored: frozenset[str],
    ) -> set[str]:
        by_room: dict[int, list[Event]] = {}
        rows: dict[int, MembershipRow] = {}
        for room, event, _, _ in found:
            by_room.setdefault(room.row.room_nid, []).append(event)
            rows[room.row.room_nid] = room.row
        visible: set[str] = set()
        for nid, events in by_room.items():
            allowed = await self._visibility.filter(
                user_id, events, current=rows[nid], ignored_users=ignored
            )
            visible.update(event.event_id for event in allowed)
        return visible

    async def _read_flags(
        self, user_id: str, events: Sequence[tuple[_Room, Event, int]]
    ) -> dict[str, bool]:
        nids = {room.row.room_nid for room, _, _ in events}
        if not nids:
            return {}
        marks = await self._store.read_marks(user_id, nids, RECEIPT_TYPES)
        own = await self._store.own_latest(user_id, nids)
        flags = {}
        for room, event, position in events:
            nid = room.row.room_nid
            thread = direct_thread(_content(event)) or MAIN_THREAD
            room_marks: Mapping[str, int] = marks.get(nid, {})
            mark = max(
                room_marks.get(UNTHREADED, 0),
                room_marks.get(thread, 0),
                own.get((nid, None if thread == MAIN_THREAD else thread), 0),
            )
            flags[event.event_id] = position <= mark or room.joined_after(position)
        return flags


def _content(event: Event) -> Mapping[str, Any]:
    return event.content if isinstance(event.content, dict) else {}
