"""Reading rooms: single events, state, members, history, context, timestamps.

Who may read what: a user sees the events history visibility allows them
(rooms.visibility); a room's state and members are readable by current members, by
former members as of when they left, and by anyone in a ``world_readable`` room.
Unknown rooms and rooms a user may not read answer the same way (403) so room IDs
cannot be probed — except ``/event``, which answers 404 for anything not visible.

History (``/messages``, ``/context``) is in graph order, ``(depth, stream_ordering)``,
with topological tokens; ``/messages`` also takes the sync tokens ``/sync`` hands out
(see :meth:`RoomReader.resolve_token` and docs/architecture.md, "History order").

spec: client-server-api/_index.md#getting-events-for-a-room, #get_matrixclientv3roomsroomidmessages,
#get_matrixclientv3roomsroomidcontexteventid, #get_matrixclientv1roomsroomidtimestamp_to_event
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.events.event import Event, StateKey
from homeserver.filtering.model import RoomEventFilter
from homeserver.rooms.serialize import EventSerializer, Viewer
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.visibility import HISTORY_VISIBILITY_KEY, HistoryVisibilityFilter
from homeserver.storage.events import EventStore, RoomRecord
from homeserver.storage.timeline import (
    Direction,
    EventConditions,
    GraphPosition,
    GraphRow,
    MembershipRow,
    TimelineStore,
)
from homeserver.streams.token import (
    HISTORY_START,
    StreamToken,
    TopologicalToken,
    parse_pagination_token,
)

IgnoredUsers = Callable[[str], Awaitable[frozenset[str]]]

#: Upper bound on rows scanned for one page when filters or visibility hide events.
_MAX_SCAN_ROUNDS = 10


class Backfill(enum.Enum):
    """What asking other servers for older history of a room came to."""

    #: Nothing older could be had (the history here is whole, or nobody had more).
    NOTHING = "nothing"
    #: Events new to this server were stored.
    STORED = "stored"
    #: Still being fetched, too slowly to wait for: a later page may find it.
    PENDING = "pending"


class RemoteHistory(Protocol):
    """History this server lacks, asked of the other servers in a room (federation's
    backfill, ``federation/history/``).  Both methods bound the time they take.
    spec: server-server-api.md#backfilling-and-retrieving-missing-events"""

    async def backfill(self, room: RoomRecord, *, down_to_depth: int | None = None) -> Backfill:
        """Fetch and store history ``room`` lacks: any gap in its history here,
        or only those at or above ``down_to_depth`` (the oldest event of a page read:
        gaps below it are for the next page)."""
        ...

    async def event_near_timestamp(
        self, room: RoomRecord, ts: int, direction: Direction, local: Event | None
    ) -> Event | None:
        """An event other servers hold nearer ``ts`` (in ``direction``) than
        ``local``, this server's best, now stored here; None when none is nearer or
        the room's history here is whole.
        spec: server-server-api.md#get_matrixfederationv1timestamp_to_eventroomid"""
        ...


@attrs.frozen
class RoomAccess:
    room: RoomRecord
    membership: MembershipRow | None
    #: The user's leave (or ban) when they may read the room only as it was then;
    #: None when they may read its current state.
    left_at: Event | None = None


class FullStateWaiter(Protocol):
    """``homeserver.rooms.partial_state.PartialStateCompleter``."""

    async def wait_for_full_state(self, room_id: str) -> None: ...


class RoomReader:
    def __init__(
        self,
        *,
        events: EventStore,
        timeline: TimelineStore,
        state: RoomStateReader,
        visibility: HistoryVisibilityFilter,
        serializer: EventSerializer,
        ignored_users: IgnoredUsers,
        remote_history: RemoteHistory | None = None,
        full_state: FullStateWaiter | None = None,
    ) -> None:
        """``remote_history``: where ``/messages`` and ``/timestamp_to_event`` get
        history this server lacks; None when it does not federate.  ``full_state``:
        the member lists wait for a room joined with partial state to be complete."""
        self._remote_history = remote_history
        self._full_state = full_state
        self._events = events
        self._timeline = timeline
        self._state = state
        self._visibility = visibility
        self._serializer = serializer
        self._ignored_users = ignored_users

    async def viewer(self, requester: Requester) -> Viewer:
        return Viewer(
            requester.user_id,
            requester.device_id,
            await self._ignored_users(requester.user_id),
        )

    async def access(self, requester: Requester, room_id: str) -> RoomAccess:
        """What of the room the requester may read; 403 if nothing."""
        room = await self._state.room(room_id)
        if room is None:
            raise errors.forbidden("You are not allowed to read this room")
        membership = await self._state.membership(room, requester.user_id)
        if membership is not None and membership.membership == "join":
            return RoomAccess(room, membership)
        if await self._world_readable(room):
            return RoomAccess(room, membership)
        if (
            membership is not None
            and membership.membership in ("leave", "ban")
            # A forgotten room is gone for the user: "a user will no longer be able to
            # retrieve history for this room" (spec: #post_matrixclientv3roomsroomidforget).
            and not membership.forgotten
        ):
            leave_event = (await self._events.get_events([membership.event_id])).get(
                membership.event_id
            )
            if leave_event is not None:
                return RoomAccess(room, membership, leave_event)
        raise errors.forbidden("You are not allowed to read this room")

    async def readable_state_ids(self, access: RoomAccess) -> Mapping[StateKey, str]:
        """The state ``access`` allows reading: current, or the state *after* the
        user's leave — the leave itself included, so a departed user sees their own
        ``m.room.member`` as ``leave`` (spec: #get_matrixclientv3roomsroomidmembers,
        "If you have left the room then this will be the members of the room when
        you left"; Synapse serves the same for ``/state`` and ``/initialSync``)."""
        if access.left_at is None:
            return await self._state.current_state_ids(access.room)
        return await self._state.state_after(access.left_at)

    async def get_event(self, requester: Requester, room_id: str, event_id: str) -> dict[str, Any]:
        """spec: #get_matrixclientv3roomsroomideventeventid"""
        room = await self._state.room(room_id)
        event = (await self._events.get_events([event_id])).get(event_id)
        if (
            room is None
            or event is None
            or event.room_id != room_id
            or not _shown_to_clients(event)
        ):
            raise errors.not_found("Event not found")
        membership = await self._state.membership(room, requester.user_id)
        viewer = await self.viewer(requester)
        visible = await self._visibility.filter(
            requester.user_id, [event], current=membership, ignored_users=frozenset()
        )
        if not visible:
            raise errors.not_found("Event not found")
        # The filter's copy: redacted if the sender was erased since.
        return await self._serializer.serialize_one(visible[0], viewer)

    async def get_state(self, requester: Requester, room_id: str) -> list[dict[str, Any]]:
        access = await self.access(requester, room_id)
        state = await self._state.events_for_state(await self.readable_state_ids(access))
        return await self._serializer.serialize(
            _sorted_state(state), await self.viewer(requester), bundle_aggregations=False
        )

    async def get_state_event(
        self, requester: Requester, room_id: str, event_type: str, state_key: str
    ) -> Event:
        access = await self.access(requester, room_id)
        state = await self._state.events_for_state(
            await self.readable_state_ids(access), [(event_type, state_key)]
        )
        event = state.get((event_type, state_key))
        if event is None:
            raise errors.not_found("Event not found")
        return event

    async def serialize_state_event(self, requester: Requester, event: Event) -> dict[str, Any]:
        return await self._serializer.serialize_one(event, await self.viewer(requester))

    async def get_members(
        self,
        requester: Requester,
        room_id: str,
        *,
        at: str | None,
        membership: str | None,
        not_membership: str | None,
    ) -> list[dict[str, Any]]:
        """spec: #get_matrixclientv3roomsroomidmembers

        ``at`` is a pagination token (a sync ``prev_batch``, a ``/messages`` token);
        for a user who has left it cannot reach past their leave.  ``membership`` and
        ``not_membership`` together are an "or", as the spec words it: a member is
        listed if their membership *is* ``membership`` or *is not* ``not_membership``.

        In a room joined with partial state the answer waits for the full member
        list (as Synapse's does): a partial one would tell an encrypting client the
        wrong devices to share keys with.
        """
        access = await self.access(requester, room_id)
        if self._full_state is not None:
            await self._full_state.wait_for_full_state(access.room.room_id)
        state_ids: Mapping[StateKey, str] | None = None
        if at is not None:
            token = parse_pagination_token(at, param="at")
            at_events: list[Event]
            if isinstance(token, StreamToken):
                # A sync token names a moment of the events stream: the state then.
                position = token.events
                if access.left_at is not None:
                    position = min(position, access.left_at.internal.stream_ordering or 0)
                at_events = await self._timeline.get_room_events(
                    access.room.room_nid, after=None, up_to=position, direction="b", limit=1
                )
            else:
                point = token
                if access.left_at is not None:
                    point = min(point, await self._leave_point(access.left_at))
                rows = await self._timeline.get_graph_page(
                    access.room.room_nid, after=None, up_to=point.key, direction="b", limit=1
                )
                at_events = [row.event for row in rows]
            if not at_events:
                # The spec is silent on a token before the room's first event; Synapse
                # answers 404 ("Can't find event for token").
                raise errors.not_found("The room has no event at that token")
            # As Synapse does: the members at a point the user could not see (before
            # their join under "joined" visibility) are not theirs to read.
            if not await self._visibility.filter(
                requester.user_id, at_events, current=access.membership
            ):
                raise errors.forbidden("You may not view this room at that point")
            state_ids = await self._state.state_after(at_events[0])
        if state_ids is None:
            state_ids = await self.readable_state_ids(access)
        member_ids = {
            key: event_id for key, event_id in state_ids.items() if key[0] == "m.room.member"
        }
        state = await self._state.events_for_state(member_ids)
        members = [
            event
            for _, event in sorted(state.items())
            if _membership_matches(event.membership, membership, not_membership)
        ]
        return await self._serializer.serialize(
            members, await self.viewer(requester), bundle_aggregations=False
        )

    async def joined_members(self, requester: Requester, room_id: str) -> dict[str, Any]:
        """spec: #get_matrixclientv3roomsroomidjoined_members (members only; waits
        for a partial-state room's full member list, as :meth:`get_members`)"""
        room = await self._state.room(room_id)
        membership = None if room is None else await self._state.membership(room, requester.user_id)
        if room is None or membership is None or membership.membership != "join":
            if not requester.is_admin or room is None:
                raise errors.forbidden("You are not in this room")
        if self._full_state is not None:
            await self._full_state.wait_for_full_state(room.room_id)
        state = await self._state.current_state(room)
        joined = {}
        for (event_type, user_id), event in state.items():
            if event_type == "m.room.member" and event.membership == "join":
                profile: dict[str, Any] = {}
                # The response names it display_name, unlike the member event's
                # displayname.  spec: #get_matrixclientv3roomsroomidjoined_members
                for content_key, response_key in (
                    ("displayname", "display_name"),
                    ("avatar_url", "avatar_url"),
                ):
                    value = event.content.get(content_key)
                    if isinstance(value, str):
                        profile[response_key] = value
                joined[user_id] = profile
        return {"joined": joined}

    async def messages(
        self,
        requester: Requester,
        room_id: str,
        *,
        from_token: str | None,
        to_token: str | None,
        direction: Direction,
        limit: int,
        event_filter: RoomEventFilter,
    ) -> dict[str, Any]:
        """A page of the room's history in graph order, with tokens to go on.

        Backwards is descending ``(depth, stream_ordering)``, forwards ascending.
        ``from`` and ``to`` name points between events (:meth:`resolve_token`); the
        page holds the events between them.  ``start`` is ``from`` as given (the
        spec: "the same as the value given in ``from``"), or without one the
        topological token of where the walk began; ``end`` is topological.  Going
        back, history missing here (below the oldest event held, or a gap the page
        reaches) is asked of the other servers in the room (:class:`RemoteHistory`).
        spec: #get_matrixclientv3roomsroomidmessages
        """
        access = await self.access(requester, room_id)
        viewer = await self.viewer(requester)
        room_nid = access.room.room_nid
        start = (
            None
            if from_token is None
            else await self.resolve_token(room_nid, from_token, param="from")
        )
        stop = (
            None if to_token is None else await self.resolve_token(room_nid, to_token, param="to")
        )
        if access.left_at is not None:
            # A former member reads up to their leave and no further (Synapse starts
            # backwards pagination at the leave too); nothing after it is theirs.
            leave = await self._leave_point(access.left_at)
            if direction == "b":
                start = leave if start is None else min(start, leave)
            else:
                stop = leave if stop is None else min(stop, leave)
        if start is None and direction == "b":
            # Pinned before reading, so ``start`` names exactly where this page began
            # even if events arrive meanwhile.
            latest = await self._timeline.get_graph_position_at_stream(room_nid, None)
            start = HISTORY_START if latest is None else TopologicalToken.after(*latest)
        start_token = from_token if from_token is not None else (start or HISTORY_START).to_string()
        if event_filter.excludes_everything or not event_filter.room_allowed(room_id):
            # Nothing can ever match: no events and no ``end`` to go on from.
            return {"start": start_token, "chunk": []}
        conditions = _conditions(event_filter)
        position = start
        chunk: list[Event] = []
        exhausted = False
        scanned_any = False
        # Going back, history missing here within the page read, or below it when
        # the page reaches the oldest event held, is asked of other servers (spec:
        # server-server-api.md#backfilling-and-retrieving-missing-events), at most
        # twice per request since each may wait for them.
        backfills_left = 2 if direction == "b" and self._remote_history is not None else 0
        backfill = Backfill.NOTHING
        for _ in range(_MAX_SCAN_ROUNDS):
            want = limit - len(chunk)
            if want <= 0:
                break
            # Backwards the page ends at ``position`` and stops at ``stop``; forwards
            # the other way round.
            lower, upper = (stop, position) if direction == "b" else (position, stop)
            rows = await self._timeline.get_graph_page(
                room_nid,
                after=_key(lower),
                up_to=_key(upper),
                direction=direction,
                limit=want,
                conditions=conditions,
            )
            if backfills_left and (rows or stop is None):
                backfills_left -= 1
                # Below the page's oldest row, unless it reached the oldest held.
                oldest = rows[-1].position[0] if len(rows) == want or stop else None
                backfill = await self._backfill(access.room, oldest)
                if backfill is Backfill.STORED:
                    # Read again from where this read began: the new events lie
                    # below that point, some of them maybe among this read's rows.
                    rows = await self._timeline.get_graph_page(
                        room_nid,
                        after=_key(lower),
                        up_to=_key(upper),
                        direction=direction,
                        limit=want,
                        conditions=conditions,
                    )
            if not rows:
                exhausted = True
                break
            scanned_any = True
            # The next read (and ``end``) goes on from the last row read, whether or
            # not it was shown: hidden events are skipped, never read twice.
            position = _past(rows[-1], direction)
            visible = await self._visibility.filter(
                requester.user_id,
                [row.event for row in rows],
                current=access.membership,
                ignored_users=viewer.ignored_users,
            )
            chunk.extend(
                e for e in visible if event_filter.allows(e.type, e.sender, e.room_id, e.content)
            )
            if len(rows) < want:
                exhausted = True
                break
        body: dict[str, Any] = {
            "start": start_token,
            "chunk": await self._serializer.serialize(chunk, viewer),
        }
        if scanned_any or not exhausted or backfill is Backfill.PENDING:
            # (Older history still on its way: the client asks again from here.)
            # Like Synapse, a page that found events always carries ``end`` (the client
            # learns it reached the end from the next, empty, page without one); only a
            # page that found nothing at all omits it.  The spec: "If no further events
            # are available ... this property is omitted".
            body["end"] = (position or HISTORY_START).to_string()
        if event_filter.lazy_load_members and chunk:
            oldest_first = chunk if direction == "f" else chunk[::-1]
            body["state"] = await self._member_state_for(oldest_first, viewer)
        return body

    async def resolve_token(self, room_nid: int, text: str, *, param: str) -> TopologicalToken:
        """The point of the room's history a ``/messages`` ``from``/``to`` names; 400
        ``M_INVALID_PARAM`` naming ``param`` if ``text`` is no token of ours.

        A topological token names it exactly.  A sync token at events position P (a
        ``/sync`` ``prev_batch`` or ``next_batch``, or an older ``/messages`` token)
        names the point just after the room's last visible event *in graph order*
        among those at stream positions <= P, so every event the token covers lies
        before it and none is skipped.  Events that arrived after P yet sort before
        that point (late federation traffic, backfill) lie before it too: a client
        can then be shown one twice, which the spec tells clients to expect
        (client-server-api/_index.md#syncing: "Clients SHOULD de-duplicate").  With no
        event at or before P the point is the start of history.
        """
        token = parse_pagination_token(text, param=param)
        if isinstance(token, TopologicalToken):
            return token
        found = await self._timeline.get_graph_position_at_stream(room_nid, token.events)
        return HISTORY_START if found is None else TopologicalToken.after(*found)

    async def context(
        self,
        requester: Requester,
        room_id: str,
        event_id: str,
        *,
        limit: int,
        event_filter: RoomEventFilter,
    ) -> dict[str, Any]:
        """The event and its neighbours in graph order; ``start`` and ``end`` are
        topological tokens just before the oldest and just after the newest event
        read.  spec: #get_matrixclientv3roomsroomidcontexteventid
        """
        access = await self.access(requester, room_id)
        viewer = await self.viewer(requester)
        event = (await self._events.get_events([event_id])).get(event_id)
        position = (
            None
            if event is None or event.room_id != room_id or not _shown_to_clients(event)
            else await self._timeline.get_graph_position(event_id)
        )
        if event is None or position is None:
            raise errors.not_found("Event not found")
        visible = await self._visibility.filter(
            requester.user_id, [event], current=access.membership
        )
        if not visible:
            raise errors.not_found("Event not found")
        event = visible[0]
        before_limit = limit // 2
        after_limit = limit - before_limit
        before, oldest = await self._visible_page(
            requester,
            access,
            viewer,
            event_filter,
            up_to=TopologicalToken.before(*position).key,
            direction="b",
            limit=before_limit,
        )
        after, newest = await self._visible_page(
            requester,
            access,
            viewer,
            event_filter,
            after=position,
            direction="f",
            limit=after_limit,
        )
        state_group = event.internal.state_group_before
        state = await self._state.events_for_state(
            await self._state.state_ids_for_group(state_group)
        )
        state_events = _sorted_state(state)
        if event_filter.lazy_load_members:
            senders = {e.sender for e in [event, *before, *after]}
            state_events = [
                e for e in state_events if e.type != "m.room.member" or e.state_key in senders
            ]
        return {
            "event": await self._serializer.serialize_one(event, viewer),
            "events_before": await self._serializer.serialize(before, viewer),
            "events_after": await self._serializer.serialize(after, viewer),
            "start": TopologicalToken.before(*(oldest or position)).to_string(),
            "end": TopologicalToken.after(*(newest or position)).to_string(),
            "state": await self._serializer.serialize(
                state_events, viewer, bundle_aggregations=False
            ),
        }

    async def timestamp_to_event(
        self, requester: Requester, room_id: str, ts: int, direction: Direction
    ) -> dict[str, Any]:
        """The visible event nearest ``ts`` in ``direction``: this server's, or one
        other servers hold nearer when history here is incomplete (fetched and stored
        first: :meth:`RemoteHistory.event_near_timestamp`).
        spec: #get_matrixclientv1roomsroomidtimestamp_to_event"""
        access = await self.access(requester, room_id)
        local = await self._visible_near_timestamp(requester, access, ts, direction)
        if self._remote_history is not None:
            remote = await self._remote_history.event_near_timestamp(
                access.room, ts, direction, local
            )
            if remote is not None and await self._visibility.filter(
                requester.user_id, [remote], current=access.membership
            ):
                local = remote
        if local is None:
            raise errors.not_found("No event found near that time")
        return {"event_id": local.event_id, "origin_server_ts": local.origin_server_ts}

    async def _visible_near_timestamp(
        self, requester: Requester, access: RoomAccess, ts: int, direction: Direction
    ) -> Event | None:
        event = await self._timeline.get_event_near_timestamp(access.room.room_nid, ts, direction)
        while event is not None:
            if await self._visibility.filter(requester.user_id, [event], current=access.membership):
                return event
            step = -1 if direction == "b" else 1
            event = await self._timeline.get_event_near_timestamp(
                access.room.room_nid, event.origin_server_ts + step, direction
            )
        return None

    async def _backfill(self, room: RoomRecord, down_to_depth: int | None) -> Backfill:
        """History ``room`` lacks from other servers (see :class:`RemoteHistory`)."""
        if self._remote_history is None:
            return Backfill.NOTHING
        return await self._remote_history.backfill(room, down_to_depth=down_to_depth)

    async def visible_events(
        self, requester: Requester, access: RoomAccess, events: Sequence[Event]
    ) -> list[Event]:
        viewer = await self.viewer(requester)
        return await self._visibility.filter(
            requester.user_id, events, current=access.membership, ignored_users=viewer.ignored_users
        )

    async def _visible_page(
        self,
        requester: Requester,
        access: RoomAccess,
        viewer: Viewer,
        event_filter: RoomEventFilter,
        *,
        direction: Direction,
        limit: int,
        after: GraphPosition | None = None,
        up_to: GraphPosition | None = None,
    ) -> tuple[list[Event], GraphPosition | None]:
        """One read of up to ``limit`` events the user may see and the filter allows,
        and the position of the last event read (shown or not; None if none)."""
        if limit <= 0:
            return [], None
        if event_filter.excludes_everything or not event_filter.room_allowed(access.room.room_id):
            return [], None
        rows = await self._timeline.get_graph_page(
            access.room.room_nid,
            after=after,
            up_to=up_to,
            direction=direction,
            limit=limit,
            conditions=_conditions(event_filter),
        )
        visible = await self._visibility.filter(
            requester.user_id,
            [row.event for row in rows],
            current=access.membership,
            ignored_users=viewer.ignored_users,
        )
        events = [e for e in visible if event_filter.allows(e.type, e.sender, e.room_id, e.content)]
        return events, rows[-1].position if rows else None

    async def _leave_point(self, leave: Event) -> TopologicalToken:
        """Just after the user's leave: the last point of history a former member reads
        (the start of history if the leave is not in the room's timeline)."""
        position = await self._timeline.get_graph_position(leave.event_id)
        return HISTORY_START if position is None else TopologicalToken.after(*position)

    async def _member_state_for(
        self, oldest_first: Sequence[Event], viewer: Viewer
    ) -> list[dict[str, Any]]:
        """The senders' member events as of the oldest event of the page; a sender who
        joined later in the page gets their member event as of the newest one.

        spec: #lazy-loading-room-members (Synapse takes them at the page's first event)
        """
        oldest, newest = oldest_first[0], oldest_first[-1]
        senders = sorted({e.sender for e in oldest_first})
        keys = [("m.room.member", sender) for sender in senders]
        members = await self._state.events_for_state(await self._state.state_after(oldest), keys)
        missing = [key for key in keys if key not in members]
        if missing and newest is not oldest:
            later = await self._state.events_for_state(
                await self._state.state_after(newest), missing
            )
            members.update(later)
        return await self._serializer.serialize(
            [members[key] for key in keys if key in members], viewer, bundle_aggregations=False
        )

    async def _world_readable(self, room: RoomRecord) -> bool:
        state = await self._state.current_state(room, [HISTORY_VISIBILITY_KEY])
        event = state.get(HISTORY_VISIBILITY_KEY)
        return event is not None and event.content.get("history_visibility") == "world_readable"


def _key(point: TopologicalToken | None) -> GraphPosition | None:
    return None if point is None else point.key


def _past(row: GraphRow, direction: Direction) -> TopologicalToken:
    """The point beyond ``row`` in the direction of travel."""
    if direction == "b":
        return TopologicalToken.before(*row.position)
    return TopologicalToken.after(*row.position)


def _conditions(event_filter: RoomEventFilter) -> EventConditions:
    """The part of ``event_filter`` SQL can apply (``contains_url`` needs the content;
    wildcard ``not_types`` are left to :meth:`RoomEventFilter.allows`, which still
    sees every event)."""
    types = event_filter.types
    return EventConditions(
        types=None if types is None or types.matches_everything else types.patterns,
        not_types=tuple(t for t in event_filter.not_types.patterns if "*" not in t),
        senders=None if event_filter.senders is None else tuple(sorted(event_filter.senders)),
        not_senders=tuple(sorted(event_filter.not_senders)),
    )


def _sorted_state(state: dict[StateKey, Event]) -> list[Event]:
    return [state[key] for key in sorted(state)]


def _membership_matches(
    value: str | None, membership: str | None, not_membership: str | None
) -> bool:
    """The spec's ``/members`` filter: no filter lets all through; with both, either
    test passing is enough."""
    tests = []
    if membership is not None:
        tests.append(value == membership)
    if not_membership is not None:
        tests.append(value != not_membership)
    return not tests or any(tests)


def _shown_to_clients(event: Event) -> bool:
    """Outliers, rejected and soft-failed events are stored but never shown.
    spec: server-server-api.md#soft-failure ("should not be relayed to the client")"""
    return not (event.internal.outlier or event.rejected or event.internal.soft_failed)
