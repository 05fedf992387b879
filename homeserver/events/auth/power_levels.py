"""Reading power levels out of room state: who has what level, what each action needs.

Everything here *reads* state leniently: a value that cannot be understood as a power
level is treated as absent, so the default applies.  Whether a *new*
``m.room.power_levels`` event is well formed is decided by
:mod:`homeserver.events.auth.power_level_changes`, which is strict.

Lookups are lazy (one dict lookup and one parse per question) rather than parsing the
whole event up front, because a typical check asks two or three questions of a
content that may list thousands of users.

spec: server-server-api.md#definitions ("Required Power Level", "Invite Level, ..."),
client-server-api m.room.power_levels (defaults), rooms/v12.md#authorisation-rules
(creators have infinite power), rooms/fragments/v1-stringy-power-levels.md,
rooms/fragments/v1-floaty-power-levels.md
"""

from __future__ import annotations

import math
import re

from homeserver.events.event import Event, StateMap
from homeserver.events.room_versions import RoomVersion

CREATE_KEY = ("m.room.create", "")
POWER_LEVELS_KEY = ("m.room.power_levels", "")

#: Defaults when the key is absent (or there is no power levels event at all).
#: spec: data/event-schemas/schema/m.room.power_levels.yaml, server-server-api.md#definitions
DEFAULT_LEVELS: dict[str, int] = {
    "users_default": 0,
    "events_default": 0,
    "state_default": 50,
    "ban": 50,
    "kick": 50,
    "redact": 50,
    "invite": 0,
}

#: Pre-v12, with no power levels event, the creator has this level.
#: spec: m.room.power_levels schema, users_default note
CREATOR_LEVEL_WITHOUT_POWER_LEVELS = 100

# spec: rooms/fragments/v1-stringy-power-levels.md: optional whitespace, one optional
# sign, base-10 digits (leading zeroes allowed), optional whitespace.  Written out
# rather than trusting int(), which also accepts "1_000" and non-ASCII digits.
_STRINGY_INT = re.compile(r"\s*[+-]?[0-9]+\s*")


def parse_power_level(value: object, room_version: RoomVersion) -> int | None:
    """``value`` as a power level for ``room_version``, or None if it is not one.

    v10+ accept JSON integers only.  Earlier versions also accept integer strings;
    v1-v5 (which predate canonical JSON) also accept finite floats, truncated.
    Booleans are never power levels even though Python counts them as ints.
    """
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if room_version.enforce_int_power_levels:
        return None
    if isinstance(value, str):
        if _STRINGY_INT.fullmatch(value) is None:
            return None
        try:
            return int(value.strip())
        except ValueError:  # more digits than int() will convert
            return None
    if isinstance(value, float) and not room_version.strict_canonicaljson:
        # spec: v1-floaty-power-levels.md: truncate; Infinity/NaN/out-of-range reject.
        return int(value) if math.isfinite(value) else None
    return None


def get_room_creators(room_version: RoomVersion, create_event: Event | None) -> frozenset[str]:
    """The room's creators as defined by ``room_version``.

    v1-v10: ``content.creator``; v11: the create event's sender; v12: the sender plus
    ``content.additional_creators``.  spec: rooms/v11.md, rooms/v12.md#authorisation-rules
    """
    if create_event is None:
        return frozenset()
    content = create_event.content
    if not room_version.implicit_room_creator:
        creator = content.get("creator") if isinstance(content, dict) else None
        return frozenset((creator,)) if isinstance(creator, str) else frozenset()
    creators = {create_event.sender}
    if room_version.hydra and isinstance(content, dict):
        additional = content.get("additional_creators")
        if isinstance(additional, list):
            creators.update(user for user in additional if isinstance(user, str))
    return frozenset(creators)


def primary_creator(room_version: RoomVersion, create_event: Event) -> str | None:
    """The one user whose first join needs no join rule ("the creator").

    spec: rooms/v1.md rule 5.2.1 (``creator``), rooms/v11.md and v12.md rule 5.3.1
    (the create event's ``sender``; *not* the additional creators).
    """
    if room_version.implicit_room_creator:
        return create_event.sender
    content = create_event.content
    creator = content.get("creator") if isinstance(content, dict) else None
    return creator if isinstance(creator, str) else None


class PowerLevels:
    """A read-only view of the power levels in force in one state."""

    __slots__ = ("_content", "_hydra", "creators", "has_event", "room_version")

    def __init__(
        self,
        room_version: RoomVersion,
        power_levels_event: Event | None,
        creators: frozenset[str],
    ) -> None:
        self.room_version = room_version
        self.creators = creators
        self.has_event = power_levels_event is not None
        content = power_levels_event.content if power_levels_event is not None else None
        self._content: dict[str, object] = content if isinstance(content, dict) else {}
        self._hydra = room_version.hydra

    @classmethod
    def from_state(cls, room_version: RoomVersion, state: StateMap[Event]) -> PowerLevels:
        return cls(
            room_version,
            state.get(POWER_LEVELS_KEY),
            get_room_creators(room_version, state.get(CREATE_KEY)),
        )

    def _level(self, key: str) -> int:
        value = self._content.get(key)
        if value is not None:
            parsed = parse_power_level(value, self.room_version)
            if parsed is not None:
                return parsed
        return DEFAULT_LEVELS[key]

    def named_level(self, key: str) -> int:
        """``invite``/``kick``/``ban``/``redact``/``*_default`` with its default."""
        return self._level(key)

    def user_level(self, user_id: str) -> int | float:
        """The power level of ``user_id``; ``math.inf`` for v12 creators."""
        if self._hydra and user_id in self.creators:
            return math.inf
        if not self.has_event:
            if user_id in self.creators:  # pre-v12 only; v12 returned above
                return CREATOR_LEVEL_WITHOUT_POWER_LEVELS
            return 0
        users = self._content.get("users")
        if isinstance(users, dict):
            value = users.get(user_id)
            if value is not None:
                parsed = parse_power_level(value, self.room_version)
                if parsed is not None:
                    return parsed
        return self._level("users_default")

    def send_level(self, event_type: str, is_state: bool) -> int:
        """The *required power level* to send an event of ``event_type``.

        spec: server-server-api.md#definitions ("Required Power Level")
        """
        events = self._content.get("events")
        if isinstance(events, dict):
            value = events.get(event_type)
            if value is not None:
                parsed = parse_power_level(value, self.room_version)
                if parsed is not None:
                    return parsed
        return self._level("state_default" if is_state else "events_default")


def get_user_power_level(
    room_version: RoomVersion, user_id: str, state: StateMap[Event]
) -> int | float:
    """``user_id``'s power level in ``state`` (``math.inf`` for v12 creators)."""
    return PowerLevels.from_state(room_version, state).user_level(user_id)


def required_power_level(
    room_version: RoomVersion, event_type: str, state_key: str | None, state: StateMap[Event]
) -> int:
    """The level needed to send an event of this type (state if ``state_key`` is set)."""
    return PowerLevels.from_state(room_version, state).send_level(event_type, state_key is not None)


def get_power_level_for_event(
    room_version: RoomVersion, event: Event, state: StateMap[Event]
) -> int:
    """The level ``event``'s sender needs to send it (its type's required level)."""
    return required_power_level(room_version, event.type, event.state_key, state)


def get_named_level(room_version: RoomVersion, name: str, state: StateMap[Event]) -> int:
    """The ``invite``/``kick``/``ban``/``redact`` (or ``*_default``) level in ``state``."""
    if name not in DEFAULT_LEVELS:
        raise ValueError(f"not a named power level: {name!r}")
    return PowerLevels.from_state(room_version, state).named_level(name)
