"""The top-level sections of a sync response that are not rooms: one builder each.

A section answers "what changed for this user between tokens A and B, under this
filter" for one stream.  The sync handler (``sync/handler.py``) builds the rooms
itself; every other stream adds a :class:`SyncSection` here instead of another branch
there (DESIGN.md, "Sync as sections").  The WebSocket stream pushes the same
responses, so it gets every section for free.

spec: client-server-api/_index.md#get_matrixclientv3sync
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs

from homeserver.filtering.model import FilterCollection
from homeserver.presence.handler import PresenceHandler
from homeserver.streams.token import StreamKey, StreamToken


@attrs.frozen
class SectionRequest:
    user_id: str
    device_id: str | None
    #: None: an initial sync.
    since: StreamToken | None
    now: StreamToken
    filter: FilterCollection
    #: Stream -> the position the response's ``next_batch`` may not pass
    #: (:meth:`limit_token`).
    token_limits: dict[StreamKey, int] = attrs.field(factory=dict, init=False, eq=False)

    def limit_token(self, key: StreamKey, position: int) -> None:
        """The section delivered its stream only up to ``position`` (at least the
        ``since`` position, below ``now``'s): one page of a longer backlog.  The
        response's ``next_batch`` stops there on that stream, so the next sync carries
        on from it, and the response counts as news (a waiting ``/sync`` returns)."""
        self.token_limits[key] = min(position, self.token_limits.get(key, position))


class SyncSection(Protocol):
    @property
    def key(self) -> str | None:
        """The response key the section fills; None: the body's own keys are
        top-level keys of the response (fields about the requesting device)."""

    async def build(self, request: SectionRequest) -> dict[str, Any]:
        """The section's body in the response."""

    def has_news(self, body: dict[str, Any]) -> bool:
        """Whether ``body`` is worth answering a waiting ``/sync`` for."""


@runtime_checkable
class AcknowledgedSection(Protocol):
    """A section that keeps what it delivers until the device acknowledges it
    (to-device messages): a section may also implement this."""

    async def acknowledge(self, user_id: str, device_id: str, token: StreamToken) -> None:
        """The device received every response up to ``token`` (a ``next_batch`` it
        synced with, or acknowledged on the WebSocket stream); positions are at most
        the ones handed out."""


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
