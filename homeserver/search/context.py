"""``event_context`` of search results: the events around each one, as ``/context``
reads them (graph order, history visibility applied, a former member never past
their leave), and optionally the senders' profiles as they were then.

spec: data/api/client-server/search.yaml (``event_context``, ``context``)
"""

from __future__ import annotations

from typing import Any

from homeserver.events.event import Event
from homeserver.rooms.serialize import EventSerializer, Viewer
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.visibility import HistoryVisibilityFilter
from homeserver.search.criteria import EventContext
from homeserver.storage.timeline import GraphPosition, MembershipRow, TimelineStore
from homeserver.streams.token import TopologicalToken


class SearchContext:
    def __init__(
        self,
        *,
        timeline: TimelineStore,
        state: RoomStateReader,
        visibility: HistoryVisibilityFilter,
        serializer: EventSerializer,
    ) -> None:
        self._timeline = timeline
        self._state = state
        self._visibility = visibility
        self._serializer = serializer

    async def around(
        self,
        event: Event,
        *,
        room_nid: int,
        viewer: Viewer,
        membership: MembershipRow,
        wanted: EventContext,
    ) -> dict[str, Any]:
        position = await self._timeline.get_graph_position(event.event_id)
        if position is None:
            return {"events_before": [], "events_after": []}
        # A former member reads up to their leave and no further (as /context).
        leave: GraphPosition | None = None
        if membership.membership != "join":
            leave = await self._timeline.get_graph_position(membership.event_id)
        before, oldest = await self._page(
            room_nid,
            viewer,
            membership,
            after=None,
            up_to=TopologicalToken.before(*position).key,
            direction="b",
            limit=wanted.before_limit,
        )
        after, newest = await self._page(
            room_nid,
            viewer,
            membership,
            after=position,
            up_to=leave,
            direction="f",
            limit=wanted.after_limit,
        )
        body: dict[str, Any] = {
            # Nearest first (reverse-chronological), as /context gives them.
            "events_before": await self._serializer.serialize(before, viewer),
            "events_after": await self._serializer.serialize(after, viewer),
            "start": TopologicalToken.before(*(oldest or position)).to_string(),
            "end": TopologicalToken.after(*(newest or position)).to_string(),
        }
        if wanted.include_profile:
            body["profile_info"] = await self._profiles([*before[::-1], event, *after])
        return body

    async def _page(
        self,
        room_nid: int,
        viewer: Viewer,
        membership: MembershipRow,
        *,
        after: GraphPosition | None,
        up_to: GraphPosition | None,
        direction: str,
        limit: int,
    ) -> tuple[list[Event], GraphPosition | None]:
        if limit <= 0:
            return [], None
        rows = await self._timeline.get_graph_page(
            room_nid,
            after=after,
            up_to=up_to,
            direction="b" if direction == "b" else "f",
            limit=limit,
        )
        visible = await self._visibility.filter(
            viewer.user_id,
            [row.event for row in rows],
            current=membership,
            ignored_users=viewer.ignored_users,
        )
        return visible, rows[-1].position if rows else None

    async def _profiles(self, events: list[Event]) -> dict[str, dict[str, str]]:
        """Each sender's display name and avatar in the state after the newest of
        ``events`` (oldest first), as Synapse gives them."""
        senders = sorted({e.sender for e in events})
        state_ids = await self._state.state_after(events[-1])
        members = await self._state.events_for_state(
            state_ids, [("m.room.member", sender) for sender in senders]
        )
        profiles: dict[str, dict[str, str]] = {}
        for (_, user_id), member in members.items():
            profile = {
                key: value
                for key in ("displayname", "avatar_url")
                if isinstance(value := member.content.get(key), str)
            }
            profiles[user_id] = profile
        return profiles
