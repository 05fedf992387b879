"""Which events a user may see: history visibility, erased senders, ignored users.

For each event, what counts is the room's ``m.room.history_visibility`` and the
user's membership in the state at that event (before it), so a change of visibility
applies from the next event on.  Events the user was joined for are always visible;
``world_readable`` ones to anyone; ``invited`` from an invite on; ``shared`` (the
default) to users who joined later — those joined now, and former members for what
came before they left.  An ``m.room.history_visibility`` event is visible if the
rule before *or* after it allows; users always see their own membership events
(their join, kick, ban).  Ignored users' messages are hidden (their state events are
not: clients need the state).  Events of a sender erased at deactivation are served
redacted to users who were not joined when the event was sent.

spec: client-server-api/modules/history_visibility.md ("Server behaviour"),
_index.md#post_matrixclientv3accountdeactivate (``erase``), #ignoring-users
"""

from __future__ import annotations

from collections.abc import Sequence

from homeserver.events.event import Event
from homeserver.events.redaction import prune_event
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.erased_users import ErasedUserStore
from homeserver.storage.events import EventStore
from homeserver.storage.timeline import MembershipRow

HISTORY_VISIBILITY_KEY = ("m.room.history_visibility", "")
DEFAULT_HISTORY_VISIBILITY = "shared"
HISTORY_VISIBILITIES = frozenset({"world_readable", "shared", "invited", "joined"})
#: Least restrictive first: of two rules, the one earlier here shows more.
_LEAST_RESTRICTIVE_FIRST = ("world_readable", "shared", "invited", "joined")


class HistoryVisibilityFilter:
    def __init__(
        self, events: EventStore, state: RoomStateReader, erased: ErasedUserStore | None = None
    ) -> None:
        self._events = events
        self._state = state
        self._erased = erased

    async def filter(
        self,
        user_id: str,
        events: Sequence[Event],
        *,
        current: MembershipRow | None,
        ignored_users: frozenset[str] = frozenset(),
    ) -> list[Event]:
        """The events of ``events`` (all from one room) that ``user_id`` may see, in
        order; an erased sender's event comes back redacted when the user was not
        joined at it.

        ``current`` is the user's current membership in the room (None: never a
        member).  Events after the user's current join are visible without reading
        state: the user has been joined ever since.
        """
        visible: list[Event] = []
        #: Indexes in ``visible`` of events the user was not joined at.
        seen_from_outside: list[int] = []
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
            allowed, joined = await self._allowed(user_id, event, current, state_cache)
            if not allowed:
                continue
            if not joined:
                seen_from_outside.append(len(visible))
            visible.append(event)
        if seen_from_outside and self._erased is not None:
            # As Synapse: users who were not in the room when an erased user's event
            # was sent get the redacted copy; those who were keep the original.  Only
            # such events cost a query, so a joined member's sync costs none.
            erased = await self._erased.erased_among(
                {visible[index].sender for index in seen_from_outside}
            )
            for index in seen_from_outside:
                if visible[index].sender in erased:
                    visible[index] = prune_event(visible[index])
        return visible

    async def _allowed(
        self,
        user_id: str,
        event: Event,
        current: MembershipRow | None,
        state_cache: dict[int | None, tuple[str, str | None]],
    ) -> tuple[bool, bool]:
        """(may the user see ``event``, were they joined at it)."""
        group = event.internal.state_group_before
        if group not in state_cache:
            state_cache[group] = await self._visibility_and_membership(user_id, group)
        visibility, membership = state_cache[group]
        if membership == "join":
            return True, True
        if event.type == "m.room.member" and event.state_key == user_id:
            # Users always see changes to their own membership: their kick, their ban,
            # the leave that rejects an invite.
            return True, False
        if event.type == HISTORY_VISIBILITY_KEY[0] and event.state_key == "":
            # "visible if the history_visibility before *or* after the event would
            # allow": judge by the less restrictive of the two.
            after = event.content.get("history_visibility")
            if after in HISTORY_VISIBILITIES and _LEAST_RESTRICTIVE_FIRST.index(
                after
            ) < _LEAST_RESTRICTIVE_FIRST.index(visibility):
                visibility = after
        if visibility == "world_readable":
            return True, False
        if visibility == "joined":
            return False, False
        if visibility == "invited":
            return membership == "invite", False
        # shared: for users who joined the room at any point after the event — those
        # joined now, and former members (leave, ban) for events before they left.
        # Like Synapse, a former member is not asked whether their membership ever
        # was a join (a rejected invite counts as having been in the room).
        if current is None:
            return False, False
        if current.membership == "join":
            return True, False
        stream = event.internal.stream_ordering
        return (
            current.membership in ("leave", "ban")
            and stream is not None
            and stream <= current.stream_ordering
        ), False

    async def _visibility_and_membership(
        self, user_id: str, group: int | None
    ) -> tuple[str, str | None]:
        keys = [HISTORY_VISIBILITY_KEY, ("m.room.member", user_id)]
        wanted = list((await self._state.state_ids_for_keys(group, keys)).values())
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
