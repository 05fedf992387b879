"""``/sync``: everything that changed for a user since a token, or a snapshot.

Initial sync (no ``since``): for each joined room the last ``limit`` timeline events
with the state at the start of that timeline; invites with their stripped state;
left rooms only when the filter's ``include_leave`` asks.  Incremental: rooms whose
membership changed (new joins get a full room, leaves their timeline up to the
leave), joined rooms with new events (a state delta only when the timeline is
``limited`` or the filter left state events out of it: ``sync/room_state.py``),
receipts, typing, account data, unread counts.  Timelines are read with the filter
applied while reading (``sync/room_timeline.py``).  When nothing has
changed, the request waits on the notifier until something concerning the user
does, or ``timeout`` passes.

Work is proportional to what changed: which joined rooms have news is answered from
the notifier's in-memory history when possible, the database otherwise; events and
state come from the stores' caches; serialisation (redactions, edits, threads) is
one batch across all rooms.

spec: client-server-api/_index.md#syncing, #get_matrixclientv3sync,
#lazy-loading-room-members, #stripped-state
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs

from homeserver.auth.tokens import Requester
from homeserver.events.event import Event, StateKey
from homeserver.filtering.model import FilterCollection
from homeserver.rooms.serialize import Viewer
from homeserver.rooms.stripped_state import STRIPPED_STATE_KEYS
from homeserver.storage.events import RoomRecord
from homeserver.storage.timeline import MembershipRow
from homeserver.streams.token import STREAM_KEYS, StreamToken
from homeserver.sync.lazy_members import LazyMembersSent
from homeserver.sync.room_state import LazyMembers, RoomStateSection
from homeserver.sync.room_timeline import load_timeline
from homeserver.sync.sections import AcknowledgedSection, SectionRequest, SyncSection
from homeserver.sync.sources import SyncSources
from homeserver.unread.counter import UnreadCounter
from homeserver.util.single_flight import SingleFlight

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMELINE_LIMIT = 1000
MAX_TIMEOUT_MS = 5 * 60 * 1000

NAMING_STATE_KEYS: tuple[StateKey, ...] = (("m.room.name", ""), ("m.room.canonical_alias", ""))


@attrs.frozen
class SyncRequest:
    since: StreamToken | None
    timeout_ms: int
    full_state: bool
    filter: FilterCollection
    #: Syncing with ``since`` acknowledges the response that handed it out: what
    #: is kept until delivery (to-device messages) may go.  Not for the WebSocket
    #: stream's own follow-up syncs: its client acknowledges with ``ack`` frames.
    acknowledges_since: bool = True


@attrs.frozen
class SyncResult:
    #: The response body.
    body: dict[str, Any]
    #: Room ID -> the newest event of the room's timeline in this response sent by
    #: someone else: what the user's device receives ("delivered" receipts).
    deliveries: Mapping[str, str]
    #: The response carries something besides a new token (a room, account data,
    #: a section's events): what the WebSocket stream sends a frame for.
    has_news: bool


@attrs.define
class _RoomPlan:
    """What one room contributes to the response, before serialisation."""

    room_id: str
    section: str  # join, invite, leave, knock
    membership: MembershipRow
    #: The room is sent whole (initial or full-state sync, a new join).
    full_state: bool = False
    timeline: list[Event] = attrs.field(factory=list)
    limited: bool = False
    prev_batch: int = 0
    state: list[Event] = attrs.field(factory=list)
    stripped: list[dict[str, Any]] = attrs.field(factory=list)
    #: The member counts or heroes may have changed (spec: RoomSummary).
    needs_summary: bool = False
    #: Lazy loading: member → membership event ID this response gives the device.
    members_sent: dict[str, str] = attrs.field(factory=dict)


class SyncHandler:
    def __init__(
        self,
        sources: SyncSources,
        *,
        unread: UnreadCounter,
        sections: Sequence[SyncSection] = (),
    ) -> None:
        """``sections``: the top-level sections besides rooms and account data, in
        response order (``sync/sections.py``)."""
        self._sources = sources
        self._unread = unread
        self._sections = tuple(sections)
        self._lazy_members = LazyMembersSent()
        self._room_state = RoomStateSection(sources.state, self._lazy_members)
        self._in_flight: SingleFlight[tuple[str, str | None, SyncRequest], SyncResult] = (
            SingleFlight()
        )

    async def sync(self, requester: Requester, request: SyncRequest) -> dict[str, Any]:
        """The sync response; identical concurrent requests of one device share it."""
        return (await self.sync_result(requester, request)).body

    async def sync_result(self, requester: Requester, request: SyncRequest) -> SyncResult:
        """The sync response and what it delivers to the device."""
        key = (requester.user_id, requester.device_id, request)
        return await self._in_flight.run(key, lambda: self._sync(requester, request))

    async def _sync(self, requester: Requester, request: SyncRequest) -> SyncResult:
        deadline = self._sources.clock.time_msec() + min(max(request.timeout_ms, 0), MAX_TIMEOUT_MS)
        since = request.since
        if since is not None and request.acknowledges_since:
            # Before building: what the device already has is not read again.
            await self.acknowledge(requester, since)
        while True:
            now = self._sources.notifier.current_token
            response, rooms, plans, paged = await self._build(requester, request, since, now)
            remaining = deadline - self._sources.clock.time_msec()
            # A section that sent one page of a backlog has more at once.
            has_news = paged or self._has_news(response)
            if since is None or request.full_state or has_news or remaining <= 0:
                self._remember_members_sent(requester, request, plans, now)
                return SyncResult(response, _deliveries(requester.user_id, plans), has_news)
            woken = await self._sources.notifier.wait_for_changes(
                requester.user_id, rooms, now, int(remaining)
            )
            if not woken:
                # Nothing concerning the user happened: the empty answer computed at
                # ``now``.  Not the notifier's newer position: a change may have moved
                # it before the notification that wakes this user's rooms (presence
                # tells the rooms in batches), and skipping it would lose it.
                return SyncResult(response, {}, False)

    async def acknowledge(self, requester: Requester, token: StreamToken) -> None:
        """The device received every response up to ``token`` (a ``next_batch``): the
        sections that keep things until delivery let them go.  Positions past what
        this server has handed out are lowered to it (a token from elsewhere must not
        drop what is still being written)."""
        if requester.device_id is None:
            return
        current = self._sources.notifier.current_token
        known = StreamToken(*(min(token.get(key), current.get(key)) for key in STREAM_KEYS))
        for section in self._sections:
            if isinstance(section, AcknowledgedSection):
                await section.acknowledge(requester.user_id, requester.device_id, known)

    async def _build(
        self,
        requester: Requester,
        request: SyncRequest,
        since: StreamToken | None,
        now: StreamToken,
    ) -> tuple[dict[str, Any], list[str], list[_RoomPlan], bool]:
        """The response, the joined rooms, the room plans, and whether a section
        limited ``next_batch`` (:meth:`SectionRequest.limit_token`)."""
        user_id = requester.user_id
        filters = request.filter
        ignored = await self._sources.account_data.ignored_users(user_id)
        memberships = await self._sources.timeline.get_memberships_for_user(user_id)
        viewer = Viewer(
            user_id,
            requester.device_id,
            ignored,
            current_memberships={m.room_id: (m.stream_ordering, m.membership) for m in memberships},
        )
        forgotten = {m.room_id for m in memberships if m.forgotten}
        joined_rooms = [m.room_id for m in memberships if m.membership == "join"]
        plans = await self._plan_rooms(
            requester, request, since, now, memberships, forgotten, ignored
        )
        plans = [p for p in plans if filters.room_allowed(p.room_id)]
        serialized = await self._serialize_plans(plans, viewer, filters)
        since_pos = since if since is not None else StreamToken()
        joined_set = {p.room_id for p in plans if p.section == "join"} | set(joined_rooms)
        joined_allowed = [r for r in joined_set if filters.room_allowed(r)]
        ephemeral = await self._ephemeral(user_id, joined_allowed, since_pos, now, filters)
        account = await self._sources.account_data.changes(
            user_id, since_pos.account_data, now.account_data, initial=since is None
        )
        rooms_body: dict[str, dict[str, Any]] = {"join": {}, "invite": {}, "leave": {}, "knock": {}}
        for plan in plans:
            rooms_body[plan.section][plan.room_id] = serialized[plan.room_id]
        summaries = await self._summaries(
            user_id, [p for p in plans if p.section == "join" and p.needs_summary]
        )
        for room_id, summary in summaries.items():
            rooms_body["join"][room_id]["summary"] = summary
        # Joined rooms with only ephemeral or account data news still appear.
        room_account = {
            room_id: [{"type": t, "content": c} for t, c in sorted(data.items())]
            for room_id, data in account.room_data.items()
            if filters.room_allowed(room_id)
        }
        news_only = (set(ephemeral) | set(room_account)) & set(joined_rooms)
        for room_id in news_only:
            rooms_body["join"].setdefault(room_id, _empty_joined_room())
        for room_id, room in rooms_body["join"].items():
            room["ephemeral"] = {"events": ephemeral.get(room_id, [])}
            room["account_data"] = {
                "events": filters.room.account_data.filter(
                    room_account.get(room_id, []), room_id=room_id
                )
            }
        unread = await self._unread.counts(user_id, list(rooms_body["join"]))
        threaded = filters.room.timeline.unread_thread_notifications
        for room_id, room in rooms_body["join"].items():
            counts = unread.get(room_id)
            if counts is not None:
                room.update(counts.sync_json(threaded=threaded))
            else:
                room["unread_notifications"] = {"highlight_count": 0, "notification_count": 0}
        global_account = [{"type": t, "content": c} for t, c in sorted(account.global_data.items())]
        response: dict[str, Any] = {
            "next_batch": now.to_string(),
            "rooms": {section: body for section, body in rooms_body.items() if body},
            "account_data": {"events": filters.account_data.filter(global_account)},
        }
        section_request = SectionRequest(user_id, requester.device_id, since, now, filters)
        for section in self._sections:
            body = await section.build(section_request)
            if section.key is None:
                response.update(body)
            else:
                response[section.key] = body
        limits = section_request.token_limits
        next_batch = StreamToken(
            *(min(now.get(key), limits.get(key, now.get(key))) for key in STREAM_KEYS)
        )
        response["next_batch"] = next_batch.to_string()
        return response, joined_rooms, plans, next_batch != now

    def _has_news(self, response: dict[str, Any]) -> bool:
        if response["account_data"]["events"] or any(response["rooms"].values()):
            return True
        # A section without a key of its own is asked about the whole response.
        return any(
            section.has_news(response if section.key is None else response[section.key])
            for section in self._sections
        )

    def _remember_members_sent(
        self, requester: Requester, request: SyncRequest, plans: list[_RoomPlan], now: StreamToken
    ) -> None:
        if requester.device_id is None or not request.filter.lazy_load_members:
            return
        for plan in plans:
            if plan.section in ("join", "leave"):
                self._lazy_members.record(
                    requester.user_id,
                    requester.device_id,
                    plan.room_id,
                    plan.members_sent,
                    now.events,
                    fresh=plan.full_state,
                )

    async def _plan_rooms(
        self,
        requester: Requester,
        request: SyncRequest,
        since: StreamToken | None,
        now: StreamToken,
        memberships: list[MembershipRow],
        forgotten: set[str],
        ignored: frozenset[str],
    ) -> list[_RoomPlan]:
        user_id = requester.user_id
        timeline_filter = request.filter.room.timeline
        limit = timeline_filter.effective_limit(DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT)
        plans: list[_RoomPlan | None] = []
        if since is None:
            for row in memberships:
                if row.stream_ordering > now.events:
                    continue
                if row.membership == "leave" or row.membership == "ban":
                    if not request.filter.include_leave or row.room_id in forgotten:
                        continue
                plans.append(
                    await self._room_plan(
                        requester, row, None, now.events, limit, request.filter, True, ignored
                    )
                )
            return [plan for plan in plans if plan is not None]
        # The in-memory change caches answer "nothing changed" without a query; the
        # database is asked only about what may have changed.
        events = self._sources.events
        membership_moved = await events.membership_changed_since(user_id, since.events)
        changes = (
            []
            if membership_moved is False
            else await self._sources.timeline.get_membership_changes(
                user_id, since.events, now.events
            )
        )
        changed = {row.room_id: row for row in changes}  # the latest change per room wins
        for row in changed.values():
            # A leave since ``since`` is shown even if the room was forgotten after it:
            # a device that has not synced past the leave must still learn of it
            # (forgetting hides the room from then on, not the leave itself).
            was_joined = await self._was_joined_at(user_id, row, since.events)
            full = request.full_state or not was_joined
            up_to = row.stream_ordering if row.membership != "join" else now.events
            # A new join's timeline is the room's latest events, from before the join
            # too (as Synapse does); otherwise, even with ``full_state``, it starts
            # at ``since`` (spec: #get_matrixclientv3sync, ``full_state``).
            after = None if not was_joined and row.membership == "join" else since.events
            plans.append(
                await self._room_plan(
                    requester,
                    row,
                    after,
                    up_to,
                    limit,
                    request.filter,
                    full,
                    ignored,
                    since=since.events,
                )
            )
        joined = {
            m.room_nid: m
            for m in memberships
            if m.membership == "join" and m.room_id not in changed
        }
        if request.full_state:
            busy = set(joined)
        else:
            maybe_busy = await events.rooms_changed_since(joined, since.events)
            busy = await self._sources.timeline.get_rooms_with_events_after(
                list(joined if maybe_busy is None else maybe_busy), since.events, now.events
            )
        for room_nid in busy:
            row = joined[room_nid]
            plans.append(
                await self._room_plan(
                    requester,
                    row,
                    since.events,
                    now.events,
                    limit,
                    request.filter,
                    request.full_state,
                    ignored,
                    since=since.events,
                )
            )
        return [plan for plan in plans if plan is not None]

    async def _room_plan(
        self,
        requester: Requester,
        row: MembershipRow,
        after: int | None,
        up_to: int,
        limit: int,
        filters: FilterCollection,
        full_state: bool,
        ignored: frozenset[str],
        *,
        since: int | None = None,
    ) -> _RoomPlan | None:
        user_id = requester.user_id
        timeline_filter = filters.room.timeline
        section = {"join": "join", "invite": "invite", "knock": "knock"}.get(
            row.membership, "leave"
        )
        plan = _RoomPlan(row.room_id, section, row, full_state=full_state)
        if section == "invite" and await self._invited_by(row) in ignored:
            # spec: #ignoring-users — invites from ignored users are not shown.
            return None
        if section in ("invite", "knock"):
            plan.stripped = await self._stripped_state(row)
            return plan
        batch = await load_timeline(
            self._sources.timeline,
            self._sources.visibility,
            user_id,
            row,
            after=after,
            up_to=up_to,
            limit=limit,
            timeline_filter=timeline_filter,
            ignored=ignored,
        )
        plan.timeline = batch.events
        plan.limited = batch.limited
        plan.prev_batch = batch.prev_batch
        lazy = (
            LazyMembers(user_id, requester.device_id, filters.include_redundant_members)
            if filters.lazy_load_members
            else None
        )
        state_ids = await self._room_state.state_ids(
            row, batch, since=since, up_to=up_to, full_state=full_state, lazy=lazy
        )
        state = await self._sources.state.events_for_state(state_ids)
        plan.needs_summary = full_state or any(
            e.type == "m.room.member" for e in (*plan.timeline, *state.values())
        )
        # What the client is given: the state its state filter lets through.
        plan.state = [
            state[key]
            for key in sorted(state)
            if filters.room.state.allows(
                state[key].type, state[key].sender, state[key].room_id, state[key].content
            )
        ]
        if lazy is not None:
            for event in (*plan.state, *plan.timeline):
                if event.type == "m.room.member" and event.state_key is not None:
                    plan.members_sent[event.state_key] = event.event_id
        return plan

    async def _serialize_plans(
        self, plans: list[_RoomPlan], viewer: Viewer, filters: FilterCollection
    ) -> dict[str, dict[str, Any]]:
        everything: list[Event] = []
        for plan in plans:
            everything.extend(plan.timeline)
            everything.extend(plan.state)
        bodies = {
            body["event_id"]: body
            for body in await self._sources.serializer.serialize(
                list({e.event_id: e for e in everything}.values()),
                viewer,
                include_room_id=False,
                event_format=filters.event_format,
            )
        }

        def shaped(event: Event) -> dict[str, Any]:
            return filters.apply_event_fields(bodies[event.event_id])

        result: dict[str, dict[str, Any]] = {}
        for plan in plans:
            if plan.section in ("invite", "knock"):
                key = "invite_state" if plan.section == "invite" else "knock_state"
                result[plan.room_id] = {key: {"events": plan.stripped}}
                continue
            result[plan.room_id] = {
                "timeline": {
                    "events": [shaped(e) for e in plan.timeline],
                    "limited": plan.limited,
                    "prev_batch": StreamToken(events=max(plan.prev_batch, 0)).to_string(),
                },
                "state": {"events": [shaped(e) for e in plan.state]},
            }
            if plan.section == "leave":
                result[plan.room_id]["account_data"] = {"events": []}
        return result

    async def _ephemeral(
        self,
        user_id: str,
        room_ids: Collection[str],
        since: StreamToken,
        now: StreamToken,
        filters: FilterCollection,
    ) -> dict[str, list[dict[str, Any]]]:
        ephemeral_filter = filters.room.ephemeral
        if ephemeral_filter.excludes_everything or not room_ids:
            return {}
        result: dict[str, list[dict[str, Any]]] = {}
        typing_from = since.typing if since.typing <= now.typing else 0
        for room_id, event in self._sources.typing.typing_events(room_ids, typing_from).items():
            result.setdefault(room_id, []).append(event)
        receipts_from = since.receipts if since.receipts <= now.receipts else 0
        receipts = await self._sources.receipts.receipts_for_rooms(
            room_ids, receipts_from, now.receipts, for_user=user_id
        )
        for room_id, event in receipts.items():
            result.setdefault(room_id, []).append(event)
        return {
            room_id: ephemeral_filter.filter(events, room_id=room_id)
            for room_id, events in result.items()
            if ephemeral_filter.filter(events, room_id=room_id)
        }

    async def _summaries(self, user_id: str, plans: list[_RoomPlan]) -> dict[str, dict[str, Any]]:
        """``summary`` of each room: member counts, and heroes when the room has no name
        or canonical alias for clients to show.

        spec: client-server-api/_index.md#get_matrixclientv3sync (RoomSummary),
        #calculating-the-display-name-for-a-room
        """
        if not plans:
            return {}
        by_nid = {plan.membership.room_nid: plan for plan in plans}
        rows = await self._sources.timeline.get_room_summaries(list(by_nid), exclude_user=user_id)
        summaries = {}
        for room_nid, row in rows.items():
            plan = by_nid[room_nid]
            summary: dict[str, Any] = {
                "m.joined_member_count": row.joined,
                "m.invited_member_count": row.invited,
            }
            room = await self._sources.state.room(plan.room_id)
            named = room is not None and await self._has_name(room)
            if not named:
                summary["m.heroes"] = row.heroes
            summaries[plan.room_id] = summary
        return summaries

    async def _has_name(self, room: RoomRecord) -> bool:
        state = await self._sources.state.current_state(room, NAMING_STATE_KEYS)
        name = state.get(("m.room.name", ""))
        alias = state.get(("m.room.canonical_alias", ""))
        return bool(name is not None and name.content.get("name")) or bool(
            alias is not None and alias.content.get("alias")
        )

    async def _stripped_state(self, row: MembershipRow) -> list[dict[str, Any]]:
        room = await self._sources.state.room(row.room_id)
        if room is None:
            return []
        membership = (await self._sources.events.get_events([row.event_id])).get(row.event_id)
        # An invite or knock through another server carries the room's stripped
        # state (this server may hold none of the room's state, or an old one).
        stripped = _carried_stripped_state(membership)
        if not stripped and room.current_state_group is not None:
            state = await self._sources.state.current_state(room, STRIPPED_STATE_KEYS)
            stripped = [
                {
                    "type": e.type,
                    "state_key": e.state_key,
                    "content": e.content,
                    "sender": e.sender,
                }
                for _, e in sorted(state.items())
            ]
        if membership is not None:
            invite_event: dict[str, Any] = {
                "type": membership.type,
                "state_key": membership.state_key,
                "content": membership.content,
                "sender": membership.sender,
                "event_id": membership.event_id,
                "origin_server_ts": membership.origin_server_ts,
            }
            stripped.append(invite_event)
        return stripped

    async def _invited_by(self, row: MembershipRow) -> str | None:
        event = (await self._sources.events.get_events([row.event_id])).get(row.event_id)
        return event.sender if event is not None else None

    async def _state_at_position(self, row: MembershipRow, position: int) -> Mapping[StateKey, str]:
        return await self._sources.state.state_at_position(row.room_nid, position) or {}

    async def _was_joined_at(self, user_id: str, row: MembershipRow, position: int) -> bool:
        state = await self._state_at_position(row, position)
        event_id = state.get(("m.room.member", user_id))
        if event_id is None:
            return False
        event = (await self._sources.events.get_events([event_id])).get(event_id)
        return event is not None and event.membership == "join"


def _empty_joined_room() -> dict[str, Any]:
    return {
        "timeline": {"events": [], "limited": False},
        "state": {"events": []},
    }


def _deliveries(user_id: str, plans: Sequence[_RoomPlan]) -> dict[str, str]:
    """Per joined room in the response, its newest timeline event from someone else."""
    deliveries = {}
    for plan in plans:
        if plan.section != "join":
            continue
        for event in reversed(plan.timeline):
            if event.sender != user_id:
                deliveries[plan.room_id] = event.event_id
                break
    return deliveries


def _carried_stripped_state(membership: Event | None) -> list[dict[str, Any]]:
    """The stripped state in an invite's or knock's ``unsigned`` (entries another
    server sent: full PDUs since v1.16, or stripped events), as clients get it.
    spec: client-server-api/_index.md#stripped-state"""
    if membership is None:
        return []
    carried = membership.unsigned.get("invite_room_state")
    if carried is None:
        carried = membership.unsigned.get("knock_room_state")
    if not isinstance(carried, list):
        return []
    stripped = []
    for entry in carried:
        if not isinstance(entry, dict):
            continue
        event_type, state_key = entry.get("type"), entry.get("state_key")
        content, sender = entry.get("content"), entry.get("sender")
        if membership.is_state() and (event_type, state_key) == membership.state_key_tuple:
            continue  # the membership event itself follows, in full
        if (
            isinstance(event_type, str)
            and isinstance(state_key, str)
            and isinstance(content, dict)
            and isinstance(sender, str)
        ):
            stripped.append(
                {"type": event_type, "state_key": state_key, "content": content, "sender": sender}
            )
    return stripped
