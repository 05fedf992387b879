"""The published room directory's rows and positions.

Defined here rather than in the directory store so the handler, the HTTP API and the
store share them without the API importing the store.

spec: data/api/client-server/definitions/public_rooms_chunk.yaml
"""

from __future__ import annotations

import attrs


@attrs.frozen
class PublishedRoom:
    """A published room's summary, as the directory lists it."""

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
    #: Whether listings show the room at all.
    listed: bool
    #: What ``generic_search_term`` is matched against (already normalised).
    search_text: str


@attrs.frozen(order=True)
class ListingPosition:
    """A place in the listing order (most members first, then room ID)."""

    joined_members: int
    room_id: str
