"""A room's public summary, read from its current state (pure, no I/O).

Name, topic, avatar, canonical alias, join rule, guest access, history visibility,
type and federation: what the space hierarchy shows of each room and what the
published room directory lists (``homeserver/directory/summary.py`` adds its own
listing rules on top).  Values that do not have the shape the spec gives them are
treated as absent, so a malformed state event never breaks either.

spec: data/api/client-server/definitions/public_rooms_chunk.yaml,
definitions/room_summary.yaml, the m.room.name, m.room.topic, m.room.avatar,
m.room.canonical_alias, m.room.join_rules, m.room.history_visibility,
m.room.guest_access and m.room.create schemas
"""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.events.auth import join_rule_in
from homeserver.events.event import Event, StateKey, StateMap
from homeserver.identifiers import is_valid_room_alias

CREATE = ("m.room.create", "")
NAME = ("m.room.name", "")
TOPIC = ("m.room.topic", "")
AVATAR = ("m.room.avatar", "")
CANONICAL_ALIAS = ("m.room.canonical_alias", "")
JOIN_RULES = ("m.room.join_rules", "")
HISTORY_VISIBILITY = ("m.room.history_visibility", "")
GUEST_ACCESS = ("m.room.guest_access", "")

#: The state a summary is made of.
SUMMARY_STATE: tuple[StateKey, ...] = (
    CREATE,
    NAME,
    TOPIC,
    AVATAR,
    CANONICAL_ALIAS,
    JOIN_RULES,
    HISTORY_VISIBILITY,
    GUEST_ACCESS,
)

#: spec: m.room.history_visibility: "shared" when unset or not understood.
_HISTORY_VISIBILITIES = frozenset({"invited", "joined", "shared", "world_readable"})


@attrs.frozen
class RoomSummary:
    room_id: str
    joined_members: int
    name: str | None
    topic: str | None
    avatar_url: str | None
    canonical_alias: str | None
    join_rule: str
    history_visibility: str
    guest_access: str
    room_type: str | None
    federatable: bool


def _content(state: StateMap[Event], key: StateKey) -> dict[str, Any]:
    event = state.get(key)
    content = event.content if event is not None else None
    return content if isinstance(content, dict) else {}


def _nonempty_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def topic_of(content: dict[str, Any]) -> str | None:
    """The plain-text topic: ``topic``, else the ``text/plain`` part of ``m.topic``.

    spec: m.room.topic (an empty ``topic`` unsets it; ``m.topic`` since v1.15)
    """
    topic = content.get("topic")
    if isinstance(topic, str):
        return topic or None
    block = content.get("m.topic")
    representations = block.get("m.text") if isinstance(block, dict) else None
    if isinstance(representations, list):
        for item in representations:
            if not isinstance(item, dict):
                continue
            if item.get("mimetype", "text/plain") == "text/plain":
                return _nonempty_str(item.get("body"))
    return None


def summarise_room(room_id: str, state: StateMap[Event], joined_members: int) -> RoomSummary:
    """The summary of a room with current state ``state`` (the :data:`SUMMARY_STATE`
    entries suffice)."""
    create = _content(state, CREATE)
    avatar = _nonempty_str(_content(state, AVATAR).get("url"))
    if avatar is not None and not avatar.startswith("mxc://"):
        avatar = None
    alias = _content(state, CANONICAL_ALIAS).get("alias")
    history = _content(state, HISTORY_VISIBILITY).get("history_visibility")
    guest = _content(state, GUEST_ACCESS).get("guest_access")
    room_type = create.get("type")
    return RoomSummary(
        room_id=room_id,
        joined_members=joined_members,
        name=_nonempty_str(_content(state, NAME).get("name")),
        topic=topic_of(_content(state, TOPIC)),
        avatar_url=avatar,
        canonical_alias=alias if isinstance(alias, str) and is_valid_room_alias(alias) else None,
        join_rule=join_rule_in(state),
        history_visibility=history if history in _HISTORY_VISIBILITIES else "shared",
        guest_access=guest if isinstance(guest, str) else "forbidden",
        room_type=room_type if isinstance(room_type, str) else None,
        federatable=create.get("m.federate", True) is not False,
    )
