"""The top-level sections of a sync response that are not rooms: one builder each.

A section answers "what changed for this user between tokens A and B, under this
filter" for one stream.  The sync handler (``sync/handler.py``) builds the rooms
itself; every other stream adds a :class:`SyncSection` here instead of another branch
there (DESIGN.md, "Sync as sections").  The WebSocket stream pushes the same
responses, so it gets every section for free.

spec: client-server-api/_index.md#get_matrixclientv3sync
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from homeserver.filtering.model import FilterCollection
from homeserver.presence.handler import PresenceHandler
from homeserver.streams.token import StreamToken


@attrs.frozen
class SectionRequest:
    user_id: str
    device_id: str | None
    #: None: an initial sync.
    since: StreamToken | None
    now: StreamToken
    filter: FilterCollection


class SyncSection(Protocol):
    @property
    def key(self) -> str | None:
        """The response key the section fills; None: the body's own keys are
        top-level keys of the response (fields about the requesting device)."""

    async def build(self, request: SectionRequest) -> dict[str, Any]:
        """The section's body in the response."""

    def has_news(self, body: dict[str, Any]) -> bool:
        """Whether ``body`` is worth answering a waiting ``/sync`` for."""


class PresenceSection:
    """``presence``: ``m.presence`` of the users sharing a room with the user whose
    presence changed in the span (everyone visible and not offline when initial).

    spec: client-server-api/modules/presence.md
    """

    key = "presence"

    def __init__(self, presence: PresenceHandler) -> None:
        self._presence = presence

    async def build(self, request: SectionRequest) -> dict[str, Any]:
        presence_filter = request.filter.presence
        if presence_filter.excludes_everything:
            return {"events": []}
        since = None if request.since is None else request.since.presence
        events = await self._presence.sync_events(request.user_id, since, request.now.presence)
        return {"events": presence_filter.filter(events)}

    def has_news(self, body: dict[str, Any]) -> bool:
        return bool(body["events"])
