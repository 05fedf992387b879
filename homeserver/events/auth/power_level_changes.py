"""The rules for a new ``m.room.power_levels`` event: is it well formed, and may the
sender make this change?

spec: rooms/fragments/v1-auth-rules.md rule 10, rooms/fragments/v3-auth-rules.md rule 10,
rooms/fragments/v8-auth-rules.md rule 9, rooms/v10.md and rooms/v11.md rule 9,
rooms/v12.md#authorisation-rules rule 10
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from homeserver.events.auth.errors import AuthError
from homeserver.events.auth.ids import is_valid_user_id
from homeserver.events.auth.power_levels import POWER_LEVELS_KEY, parse_power_level
from homeserver.events.event import Event, StateMap
from homeserver.events.room_versions import RoomVersion

#: The single-valued levels whose alteration is checked (rule 10.6 in v12).
LEVEL_KEYS = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")


@attrs.frozen
class ParsedPowerLevels:
    """The auth-relevant parts of a power levels content, as numbers."""

    levels: dict[str, int]
    events: dict[str, int]
    notifications: dict[str, int]
    users: dict[str, int]


def parse_new_power_levels(room_version: RoomVersion, content: object) -> ParsedPowerLevels:
    """Parse the content of a power levels event being authorised; reject if malformed.

    v10+ (rules 10.1-10.3 in v12): every level must be a JSON integer, ``events`` and
    ``notifications`` objects of integers, ``users`` an object of valid user IDs to
    integers.  Before v10 only ``users`` is specified (integers or integer strings); we
    also deny values that cannot be read as a level at all (e.g. ``"ban": "high"``),
    since the change rules cannot compare them.
    """
    if not isinstance(content, dict):
        raise AuthError("power levels content is not an object")
    levels: dict[str, int] = {}
    for key in LEVEL_KEYS:
        if key in content:
            levels[key] = _strict_level(room_version, content[key], key)
    events = _strict_map(room_version, content, "events")
    notifications: dict[str, int] = {}
    # Pre-v6 the notifications levels play no part in auth, so are not looked at.
    if room_version.limit_notifications_power_levels:
        notifications = _strict_map(room_version, content, "notifications")
    users = _strict_map(room_version, content, "users")
    for user_id in users:
        if not is_valid_user_id(user_id):
            raise AuthError(f"power levels 'users' key {user_id!r} is not a valid user ID")
    return ParsedPowerLevels(levels, events, notifications, users)


def _strict_level(room_version: RoomVersion, value: object, where: str) -> int:
    parsed = parse_power_level(value, room_version)
    if parsed is None:
        raise AuthError(f"power level {where!r} is not an integer: {value!r}")
    return parsed


def _strict_map(
    room_version: RoomVersion, content: Mapping[str, object], key: str
) -> dict[str, int]:
    value = content.get(key)
    if value is None and key not in content:
        return {}
    if not isinstance(value, dict):
        raise AuthError(f"power levels {key!r} is not an object")
    return {
        name: _strict_level(room_version, level, f"{key}.{name}") for name, level in value.items()
    }


def parse_existing_power_levels(room_version: RoomVersion, content: object) -> ParsedPowerLevels:
    """Parse the power levels already in the state, skipping what cannot be read.

    It was accepted once, so this only matters for content older rules let through.
    """
    if not isinstance(content, dict):
        return ParsedPowerLevels({}, {}, {}, {})

    def lenient(mapping: object) -> dict[str, int]:
        if not isinstance(mapping, dict):
            return {}
        parsed = {}
        for name, value in mapping.items():
            level = parse_power_level(value, room_version)
            if level is not None:
                parsed[name] = level
        return parsed

    levels = lenient({key: content[key] for key in LEVEL_KEYS if key in content})
    return ParsedPowerLevels(
        levels,
        lenient(content.get("events")),
        lenient(content.get("notifications")),
        lenient(content.get("users")),
    )


def check_power_levels_event(
    room_version: RoomVersion,
    event: Event,
    auth_events: StateMap[Event],
    sender_level: int | float,
    creators: frozenset[str],
) -> None:
    """Raise :class:`AuthError` unless this power levels event is allowed.

    Called after the generic rules (sender joined, required level, state key) passed.
    """
    new = parse_new_power_levels(room_version, event.content)
    if room_version.hydra:
        # rooms/v12.md rule 10.4: creators' power is implied and may not be written down.
        listed = creators.intersection(new.users)
        if listed:
            raise AuthError(f"power levels 'users' may not list room creators: {sorted(listed)}")
    previous = auth_events.get(POWER_LEVELS_KEY)
    if previous is None:
        return  # the room's first power levels event: anything well formed goes
    old = parse_existing_power_levels(room_version, previous.content)
    sender = event.sender

    for key in LEVEL_KEYS:
        _check_alteration(key, old.levels.get(key), new.levels.get(key), sender_level)

    sections = [("events", old.events, new.events)]
    if room_version.limit_notifications_power_levels:
        # spec: rooms/v6.md: notifications are now protected like events.
        sections.append(("notifications", old.notifications, new.notifications))
    for section, old_map, new_map in sections:
        for name in old_map.keys() | new_map.keys():
            _check_alteration(
                f"{section}.{name}", old_map.get(name), new_map.get(name), sender_level
            )

    for user_id in old.users.keys() | new.users.keys():
        old_level = old.users.get(user_id)
        new_level = new.users.get(user_id)
        if old_level == new_level:
            continue
        # Changing or removing someone else's level needs more power than they have;
        # lowering your own is always allowed.
        if old_level is not None and user_id != sender and old_level >= sender_level:
            raise AuthError(
                f"sender cannot change the level of {user_id} ({old_level}), "
                f"which is not below their own ({sender_level})"
            )
        if new_level is not None and new_level > sender_level:
            raise AuthError(
                f"sender cannot give {user_id} level {new_level}, above their own ({sender_level})"
            )


def _check_alteration(
    what: str, old_level: int | None, new_level: int | None, sender_level: int | float
) -> None:
    """Adding, changing or removing a level: neither side may exceed the sender's level."""
    if old_level == new_level:
        return
    if old_level is not None and old_level > sender_level:
        raise AuthError(
            f"sender cannot change {what!r} from {old_level}, above their level {sender_level}"
        )
    if new_level is not None and new_level > sender_level:
        raise AuthError(
            f"sender cannot set {what!r} to {new_level}, above their level {sender_level}"
        )
