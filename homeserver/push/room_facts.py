"""What the push rule conditions read of a room, besides the event: the sender's power
level and the room's ``notifications`` levels (``sender_notification_permission``)
and the recipient's display name there (``contains_display_name``).

Read once per (user, room) from the room's current state by whoever evaluates push
rules: the unread counts of ``/sync``, the pusher engine, ``GET /notifications``.

spec: client-server-api/modules/push.md#conditions-1
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from homeserver.events.auth.power_levels import (
    CREATE_KEY,
    POWER_LEVELS_KEY,
    PowerLevels,
    parse_power_level,
)
from homeserver.events.room_versions import get_room_version
from homeserver.push.evaluator import DEFAULT_NOTIFICATION_LEVELS, EvaluationContext
from homeserver.rooms.state import RoomStateReader

#: Power levels are canonical JSON integers, at most 2**53 - 1.
_ABOVE_ANY_LEVEL = 2**53


@attrs.frozen
class RoomFacts:
    power: PowerLevels
    notification_levels: Mapping[str, int]
    #: The recipient's display name in the room.
    display_name: str | None

    def context(
        self, user_id: str, room_id: str, sender: str, joined_members: int
    ) -> EvaluationContext:
        """The evaluation context of an event by ``sender`` for recipient ``user_id``."""
        level = self.power.user_level(sender)
        return EvaluationContext(
            user_id,
            self.display_name,
            joined_members,
            # v12 creators' infinite power: a level above any a room can set.
            level if isinstance(level, int) else _ABOVE_ANY_LEVEL,
            self.notification_levels,
            room_id,
        )


async def read_room_facts(
    state: RoomStateReader, user_id: str, room_version: str, state_group: int | None
) -> RoomFacts:
    """The facts for ``user_id`` in the room whose state is ``state_group``."""
    version = get_room_version(room_version)
    own_member = ("m.room.member", user_id)
    events = await state.events_for_state(
        await state.state_ids_for_group(state_group),
        (CREATE_KEY, POWER_LEVELS_KEY, own_member),
    )
    power = PowerLevels.from_state(version, events)
    levels = dict(DEFAULT_NOTIFICATION_LEVELS)
    power_event = events.get(POWER_LEVELS_KEY)
    content = power_event.content if power_event is not None else None
    notifications = content.get("notifications") if isinstance(content, dict) else None
    if isinstance(notifications, dict):
        for key, value in notifications.items():
            parsed = parse_power_level(value, version)
            if isinstance(key, str) and parsed is not None:
                levels[key] = parsed
    member = events.get(own_member)
    name = member.content.get("displayname") if member is not None else None
    return RoomFacts(power, levels, name if isinstance(name, str) else None)
