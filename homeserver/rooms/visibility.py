"""Which events a user may see: history visibility and ignored users.

For each event, what counts is the room's ``m.room.history_visibility`` and the
user's membership in the state at that event; users always see their own membership
events (their join, kick, ban).  Events the user was
joined for are always visible; ``world_readable`` ones to anyone; ``invited`` from
an invite on; ``shared`` (the default) to anyone who is joined now.  Ignored users'
messages are hidden (their state events are not: clients need the state).

spec: client-server-api/_index.md#history-visibility, #ignoring-users
"""

from __future__ import annotations

from collections.abc import Sequence

from homeserver.events.event import Event
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import EventStore
from homeserver.storage.timeline import MembershipRow

HISTORY_VISIBILITY_KEY = ("m.room.history_visibility", "")
DEFAULT_HISTORY_VISIBILITY = "shared"
HISTORY_VISIBILITIES = frozenset({"world_readable", "shared", "invited", "joined"})


class HistoryVisibilityFilter:
    def __init__(self, events: EventStore, state: RoomStateReader) -> None:
        self._events = events
        self._state = state

    async def filter(
        self,
        user_id: str,
        events: Sequence[Event],
        *,
        current: MembershipRow | None,
        ignored_users: frozenset[str] = frozenset(),
    ) -> list[Event]:
        """The events of ``events`` (all from one room) that ``user_id`` may see.

        ``current`` is the user's current membership in the room (None: never a
        member).  Events after the user's current join are visible without reading
        state: the user has been joined ever since.
        """
        visible = []
        state_cache: dict[int | None, tuple[str, str | None]] = {}
        for event in events:
            if event.sender in ignored_users and not event.is_state():
                continue
            stream = event.internal.stream_ordering
            if (
                current is not None
                and current.membership == "join"
                and stream is not None
                and stream >= current.stream_ordering
            ):
                visible.append(event)
                continue
            if await self._allowed(user_id, event, current, state_cache):
                visible.append(event)
        return visible

    async def _allowed(
        self,
        user_id: str,
        event: Event,
        current: MembershipRow | None,
        state_cache: dict[int | None, tuple[str, str | None]],
    ) -> bool:
        group = event.internal.state_group_before
        if group not in state_cache:
            state_cache[group] = await self._visibility_and_membership(user_id, group)
        visibility, membership = state_cache[group]
        if event.type == "m.room.member" and event.state_key == user_id:
            # Users always see changes to their own membership: their kick, their ban,
            # the leave that rejects an invite.
            return True
        if membership == "join" or visibility == "world_readable":
            return True
        if visibility == "joined":
            return False
        if visibility == "invited":
            return membership == "invite"
        # shared: everything, for users who are joined now.
        return current is not None and current.membership == "join"

    async def _visibility_and_membership(
        self, user_id: str, group: int | None
    ) -> tuple[str, str | None]:
        state = await self._state.state_ids_for_group(group)
        keys = [HISTORY_VISIBILITY_KEY, ("m.room.member", user_id)]
        wanted = [state[key] for key in keys if key in state]
        loaded = await self._events.get_events(wanted)
        visibility = DEFAULT_HISTORY_VISIBILITY
        membership = None
        for event in loaded.values():
            if event.type == HISTORY_VISIBILITY_KEY[0]:
                value = event.content.get("history_visibility")
                if value in HISTORY_VISIBILITIES:
                    visibility = value
            else:
                membership = event.membership
        return visibility, membership
