"""A room's directory summary, read from its current state (pure, no I/O).

The published room directory shows each room's name, topic, avatar, canonical
alias, join rule, guest access, whether it is world readable and its type.  Values
that do not have the shape the spec gives them are treated as absent, so a
malformed state event never breaks the listing.

spec: data/api/client-server/definitions/public_rooms_chunk.yaml, the m.room.name,
m.room.topic, m.room.avatar, m.room.canonical_alias, m.room.join_rules,
m.room.history_visibility, m.room.guest_access and m.room.create schemas
"""

from __future__ import annotations

from typing import Any

from homeserver.events.auth import join_rule_in
from homeserver.events.event import Event, StateKey, StateMap
from homeserver.identifiers import is_valid_room_alias
from homeserver.storage.directory import PublishedRoom

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

#: Join rules that let someone who finds the room in the directory ask to get in.
#: Published rooms with other rules are listed only when world readable (as Synapse
#: does; the spec lets servers leave out e.g. invite-only rooms).
#: spec: client-server-api/_index.md#published-room-directory (the warning box)
LISTED_JOIN_RULES = frozenset({"public", "knock", "knock_restricted"})

#: spec: m.room.history_visibility: "shared" when unset or not understood.
_HISTORY_VISIBILITIES = frozenset({"invited", "joined", "shared", "world_readable"})


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


def summarise_room(room_id: str, state: StateMap[Event], joined_members: int) -> PublishedRoom:
    """The directory's row for a room with current state ``state`` (the
    :data:`SUMMARY_STATE` entries suffice)."""
    create = _content(state, CREATE)
    name = _nonempty_str(_content(state, NAME).get("name"))
    topic = topic_of(_content(state, TOPIC))
    avatar = _nonempty_str(_content(state, AVATAR).get("url"))
    if avatar is not None and not avatar.startswith("mxc://"):
        avatar = None
    alias = _content(state, CANONICAL_ALIAS).get("alias")
    canonical_alias = alias if isinstance(alias, str) and is_valid_room_alias(alias) else None
    history = _content(state, HISTORY_VISIBILITY).get("history_visibility")
    history_visibility = history if history in _HISTORY_VISIBILITIES else "shared"
    guest = _content(state, GUEST_ACCESS).get("guest_access")
    guest_access = guest if isinstance(guest, str) else "forbidden"
    room_type = create.get("type")
    join_rule = join_rule_in(state)
    listed = joined_members > 0 and (
        join_rule in LISTED_JOIN_RULES or history_visibility == "world_readable"
    )
    return PublishedRoom(
        room_id=room_id,
        joined_members=joined_members,
        name=name,
        topic=topic,
        avatar_url=avatar,
        canonical_alias=canonical_alias,
        join_rule=join_rule,
        history_visibility=history_visibility,
        guest_access=guest_access,
        room_type=room_type if isinstance(room_type, str) else None,
        federatable=create.get("m.federate", True) is not False,
        listed=listed,
        search_text=search_text(name, topic, canonical_alias),
    )


def normalise_search(text: str) -> str:
    """Case-insensitive matching: both sides are casefolded."""
    return text.casefold()


def search_text(name: str | None, topic: str | None, canonical_alias: str | None) -> str:
    """What ``generic_search_term`` is matched against: the three fields, one a line."""
    return "\n".join(normalise_search(part) for part in (name, topic, canonical_alias) if part)
