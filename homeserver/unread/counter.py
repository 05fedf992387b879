"""Unread notification counts per room (and per thread), derived at read time.

Nothing is stored per member per message (DESIGN.md "Speed by design"): for each
room, the events after the user's read mark are scanned newest first (one indexed
query per batch of rooms) and the spec's default push rules are applied to them.

The read mark of an event's thread is the newest of: the user's join, their
unthreaded ``m.read``/``m.read.private`` receipts, their threaded receipts for that
thread (``main`` for the main timeline), and their own latest event in that thread
("when the user updates their read receipt (either by using the API or by sending an
event)").  Events sent by the user, rejected, soft-failed and outlier events never
count.

Limits, by design:
- At most :data:`MAX_SCANNED_EVENTS` events after the read mark are looked at per
  room, so counts stop growing there (a client shows "999+" long before).
- Only the server-default push rules apply (see :mod:`homeserver.unread.push_rules`);
  per-user push rules are later work.  ``.m.rule.is_room_mention`` uses the room's
  current power levels, as ``sender_notification_permission`` says.
- An event's thread is read from its own ``m.thread`` relation: notifying events in
  a thread carry one; relations that reach a thread indirectly (edits, reactions)
  do not notify under the default rules anyway.
- A redacted event counts as it did before its redaction.

spec: client-server-api/_index.md#receiving-notifications, #marking-notifications-as-read,
#threaded-read-receipts; data/api/client-server/sync.yaml (unread_notifications,
unread_thread_notifications)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs

from homeserver.events.auth.power_levels import (
    CREATE_KEY,
    POWER_LEVELS_KEY,
    PowerLevels,
    parse_power_level,
)
from homeserver.events.event import Event
from homeserver.events.room_versions import get_room_version
from homeserver.receipts.handler import RECEIPT_TYPES
from homeserver.receipts.threads import MAIN_THREAD, direct_thread
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import EventStore
from homeserver.storage.unread import RoomReadState, UnreadStore
from homeserver.unread.push_rules import Actions, evaluate, mentions_room

#: Events looked at per room after the read mark; counts stop growing beyond it.
MAX_SCANNED_EVENTS = 1000

#: ``notifications.room`` when the power levels do not say.
#: spec: data/event-schemas/schema/m.room.power_levels.yaml
DEFAULT_ROOM_NOTIFICATION_LEVEL = 50


@attrs.frozen
class NotificationCounts:
    notification_count: int = 0
    highlight_count: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "highlight_count": self.highlight_count,
            "notification_count": self.notification_count,
        }


@attrs.frozen
class UnreadCounts:
    """A room's unread notifications for one user."""

    #: The whole room, every thread included (``unread_notifications`` by default).
    notification_count: int = 0
    highlight_count: int = 0
    #: The main timeline only (``unread_notifications`` with threaded counts on).
    main: NotificationCounts = NotificationCounts()
    #: Thread root event ID -> that thread's counts; threads with nothing unread are
    #: left out.
    threads: Mapping[str, NotificationCounts] = attrs.field(factory=dict)

    def sync_json(self, *, threaded: bool) -> dict[str, Any]:
        """The room's ``unread_notifications`` (and, when the filter asks for
        ``unread_thread_notifications``, that too if any thread has unread events)."""
        if not threaded:
            total = NotificationCounts(self.notification_count, self.highlight_count)
            return {"unread_notifications": total.to_json()}
        body: dict[str, Any] = {"unread_notifications": self.main.to_json()}
        if self.threads:
            body["unread_thread_notifications"] = {
                root: counts.to_json() for root, counts in sorted(self.threads.items())
            }
        return body


class UnreadCounter:
    def __init__(
        self,
        store: UnreadStore,
        events: EventStore,
        state: RoomStateReader,
        *,
        scan_limit: int = MAX_SCANNED_EVENTS,
    ) -> None:
        self._store = store
        self._events = events
        self._state = state
        self._scan_limit = scan_limit

    async def counts(self, user_id: str, room_ids: Collection[str]) -> dict[str, UnreadCounts]:
        """room ID -> ``user_id``'s unread counts, for each room they are joined to."""
        read_states = await self._store.read_states(
            user_id, room_ids, RECEIPT_TYPES, scan_limit=self._scan_limit
        )
        wanted = [event.event_id for room in read_states.values() for event in room.events]
        loaded = await self._events.get_events(wanted) if wanted else {}
        result = {}
        for room_id, room in read_states.items():
            result[room_id] = await self._count_room(user_id, room, loaded)
        return result

    async def _count_room(
        self, user_id: str, room: RoomReadState, loaded: Mapping[str, Event]
    ) -> UnreadCounts:
        #: thread -> position up to which the user has read it
        read_up_to = dict(room.thread_marks)
        counts: dict[str, list[int]] = {}
        room_power: PowerLevels | None = None
        room_level = DEFAULT_ROOM_NOTIFICATION_LEVEL
        for scanned in room.events:  # newest first
            event = loaded.get(scanned.event_id)
            if event is None:
                continue
            content = event.content if isinstance(event.content, dict) else {}
            thread = direct_thread(content) or MAIN_THREAD
            if scanned.sender == user_id:
                # Sending an event marks its thread read up to it.
                if scanned.stream_ordering > read_up_to.get(thread, 0):
                    read_up_to[thread] = scanned.stream_ordering
                continue
            if scanned.stream_ordering <= read_up_to.get(thread, 0):
                continue
            may_notify_room = False
            if mentions_room(content):
                if room_power is None:
                    room_power, room_level = await self._power_levels(room)
                may_notify_room = room_power.user_level(scanned.sender) >= room_level
            actions = evaluate(
                event.type,
                event.state_key,
                content,
                user_id,
                sender_may_notify_room=may_notify_room,
            )
            _add(counts, thread, actions)
        main = _counts(counts.get(MAIN_THREAD))
        threads = {root: _counts(values) for root, values in counts.items() if root != MAIN_THREAD}
        return UnreadCounts(
            notification_count=sum(values[0] for values in counts.values()),
            highlight_count=sum(values[1] for values in counts.values()),
            main=main,
            threads={root: c for root, c in threads.items() if c.notification_count},
        )

    async def _power_levels(self, room: RoomReadState) -> tuple[PowerLevels, int]:
        """The room's current power levels and its ``notifications.room`` level."""
        room_version = get_room_version(room.room_version)
        state = await self._state.events_for_state(
            await self._state.state_ids_for_group(room.current_state_group),
            (CREATE_KEY, POWER_LEVELS_KEY),
        )
        power = PowerLevels.from_state(room_version, state)
        power_event = state.get(POWER_LEVELS_KEY)
        level = DEFAULT_ROOM_NOTIFICATION_LEVEL
        content = power_event.content if power_event is not None else None
        notifications = content.get("notifications") if isinstance(content, dict) else None
        if isinstance(notifications, dict):
            parsed = parse_power_level(notifications.get("room"), room_version)
            if parsed is not None:
                level = parsed
        return power, level


def _add(counts: dict[str, list[int]], thread: str, actions: Actions) -> None:
    if not actions.notify:
        return
    values = counts.setdefault(thread, [0, 0])
    values[0] += 1
    if actions.highlight:
        values[1] += 1


def _counts(values: list[int] | None) -> NotificationCounts:
    return NotificationCounts(*values) if values else NotificationCounts()
