"""A published room's directory row, from its current state (pure, no I/O).

The row is the room's summary (``homeserver/rooms/summary.py``: name, topic, avatar,
canonical alias, join rule, guest access, history visibility, type) plus what only
the directory needs: whether listings show the room and the text searches match.

spec: data/api/client-server/definitions/public_rooms_chunk.yaml,
client-server-api/_index.md#published-room-directory
"""

from __future__ import annotations

import attrs

from homeserver.directory.listing import PublishedRoom
from homeserver.events.event import Event, StateMap

# Re-exported: the directory's users read the summary's parts from here.
from homeserver.rooms.summary import HISTORY_VISIBILITY, SUMMARY_STATE, topic_of
from homeserver.rooms.summary import summarise_room as room_summary

__all__ = [
    "HISTORY_VISIBILITY",
    "LISTED_JOIN_RULES",
    "SUMMARY_STATE",
    "normalise_search",
    "search_text",
    "summarise_room",
    "topic_of",
]

#: Join rules that let someone who finds the room in the directory ask to get in.
#: Published rooms with other rules are listed only when world readable (as Synapse
#: does; the spec lets servers leave out e.g. invite-only rooms).
#: spec: client-server-api/_index.md#published-room-directory (the warning box)
LISTED_JOIN_RULES = frozenset({"public", "knock", "knock_restricted"})


def summarise_room(room_id: str, state: StateMap[Event], joined_members: int) -> PublishedRoom:
    """The directory's row for a room with current state ``state`` (the
    :data:`SUMMARY_STATE` entries suffice)."""
    summary = room_summary(room_id, state, joined_members)
    listed = joined_members > 0 and (
        summary.join_rule in LISTED_JOIN_RULES or summary.history_visibility == "world_readable"
    )
    return PublishedRoom(
        **attrs.asdict(summary, recurse=False),
        listed=listed,
        search_text=search_text(summary.name, summary.topic, summary.canonical_alias),
    )


def normalise_search(text: str) -> str:
    """Case-insensitive matching: both sides are casefolded."""
    return text.casefold()


def search_text(name: str | None, topic: str | None, canonical_alias: str | None) -> str:
    """What ``generic_search_term`` is matched against: the three fields, one a line."""
    return "\n".join(normalise_search(part) for part in (name, topic, canonical_alias) if part)
