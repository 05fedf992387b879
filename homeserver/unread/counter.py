"""Unread notification counts per room (and per thread), derived at read time.

Nothing is stored per member per message (DESIGN.md "Speed by design"): for each
room, the events after the user's read mark are scanned newest first (one indexed
query per batch of rooms) and the user's push rules (:mod:`homeserver.push`: the
server defaults merged with the user's own) are applied to them.

The read mark of an event's thread is the newest of: the user's join, their
unthreaded ``m.read``/``m.read.private`` receipts, their threaded receipts for that
thread (``main`` for the main timeline), and their own latest event in that thread
("when the user updates their read receipt (either by using the API or by sending an
event)").  Events sent by the user, rejected, soft-failed and outlier events never
count.

Limits, by design:
- At most :data:`MAX_SCANNED_EVENTS` events after the read mark are looked at per
  room, so counts stop growing there (a client shows "999+" long before).
- Conditions read the room as it is now: its joined member count
  (``room_member_count``), power levels (``sender_notification_permission``) and the
  user's display name there (``contains_display_name``), fetched once per room and
  only for rooms with something to evaluate.
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
from homeserver.push.evaluator import (
    DEFAULT_NOTIFICATION_LEVELS,
    Actions,
    EvaluationContext,
    PushRuleEvaluator,
)
from homeserver.push.handler import PushRulesHandler
from homeserver.receipts.handler import RECEIPT_TYPES
from homeserver.receipts.threads import MAIN_THREAD, direct_thread
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import EventStore
from homeserver.storage.unread import RoomReadState, UnreadStore

#: Events looked at per room after the read mark; counts stop growing beyond it.
MAX_SCANNED_EVENTS = 1000


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
        push_rules: PushRulesHandler,
        *,
        scan_limit: int = MAX_SCANNED_EVENTS,
    ) -> None:
        self._store = store
        self._events = events
        self._state = state
        self._push_rules = push_rules
        self._scan_limit = scan_limit

    async def counts(self, user_id: str, room_ids: Collection[str]) -> dict[str, UnreadCounts]:
        """room ID -> ``user_id``'s unread counts, for each room they are joined to."""
        read_states = await self._store.read_states(
            user_id, room_ids, RECEIPT_TYPES, scan_limit=self._scan_limit
        )
        wanted = [event.event_id for room in read_states.values() for event in room.events]
        loaded = await self._events.get_events(wanted) if wanted else {}
        evaluator = await self._push_rules.evaluator(user_id) if wanted else None
        result = {}
        for room_id, room in read_states.items():
            result[room_id] = await self._count_room(user_id, room, loaded, evaluator)
        return result

    async def _count_room(
        self,
        user_id: str,
        room: RoomReadState,
        loaded: Mapping[str, Event],
        evaluator: PushRuleEvaluator | None,
    ) -> UnreadCounts:
        #: thread -> position up to which the user has read it
        read_up_to = dict(room.thread_marks)
        counts: dict[str, list[int]] = {}
        facts: _RoomFacts | None = None
        for scanned in room.events:  # newest first
            event = loaded.get(scanned.event_id)
            if event is None or evaluator is None:
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
            if facts is None:
                facts = await self._room_facts(user_id, room)
            context = EvaluationContext(
                user_id,
                facts.display_name,
                room.joined_members,
                _finite(facts.power.user_level(event.sender)),
                facts.notification_levels,
                room.room_id,
            )
            _add(counts, thread, evaluator.evaluate(event.pdu, context))
        main = _counts(counts.get(MAIN_THREAD))
        threads = {root: _counts(values) for root, values in counts.items() if root != MAIN_THREAD}
        return UnreadCounts(
            notification_count=sum(values[0] for values in counts.values()),
            highlight_count=sum(values[1] for values in counts.values()),
            main=main,
            threads={root: c for root, c in threads.items() if c.notification_count},
        )

    async def _room_facts(self, user_id: str, room: RoomReadState) -> _RoomFacts:
        """What the push rule conditions read of the room's current state: power
        levels (``sender_notification_permission``) and the user's display name."""
        room_version = get_room_version(room.room_version)
        own_member = ("m.room.member", user_id)
        state = await self._state.events_for_state(
            await self._state.state_ids_for_group(room.current_state_group),
            (CREATE_KEY, POWER_LEVELS_KEY, own_member),
        )
        power = PowerLevels.from_state(room_version, state)
        levels = dict(DEFAULT_NOTIFICATION_LEVELS)
        power_event = state.get(POWER_LEVELS_KEY)
        content = power_event.content if power_event is not None else None
        notifications = content.get("notifications") if isinstance(content, dict) else None
        if isinstance(notifications, dict):
            for key, value in notifications.items():
                parsed = parse_power_level(value, room_version)
                if isinstance(key, str) and parsed is not None:
                    levels[key] = parsed
        member = state.get(own_member)
        name = member.content.get("displayname") if member is not None else None
        return _RoomFacts(power, levels, name if isinstance(name, str) else None)


def _finite(level: int | float) -> int:
    """v12 creators' infinite power as a level above any a room can set."""
    return level if isinstance(level, int) else _ABOVE_ANY_LEVEL


#: Power levels are canonical JSON integers, at most 2**53 - 1.
_ABOVE_ANY_LEVEL = 2**53


@attrs.frozen
class _RoomFacts:
    power: PowerLevels
    notification_levels: dict[str, int]
    display_name: str | None


def _add(counts: dict[str, list[int]], thread: str, actions: Actions) -> None:
    if not actions.notify:
        return
    values = counts.setdefault(thread, [0, 0])
    values[0] += 1
    if actions.highlight:
        values[1] += 1


def _counts(values: list[int] | None) -> NotificationCounts:
    return NotificationCounts(*values) if values else NotificationCounts()
