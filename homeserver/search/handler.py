"""``POST /search`` (``room_events``): which rooms, which hits, what the user may see.

Rooms searched: those the user is joined to, and those they left (or were banned
from) and have not forgotten, up to their leave — the spec's "all rooms that the
user has been in" — except end-to-end encrypted rooms (spec: "The search will *not*
include rooms that are end to end encrypted"; the indexer marks them).  In each
room the scope starts at the earlier of the user's first membership event and the
room's first indexed event sent under ``shared``/``world_readable`` visibility:
before both, every event was sent under ``joined``/``invited`` visibility while the
user was not in the room, so none can be visible.  Each hit then passes history
visibility as of its place in the room (rooms.visibility), so the user finds only
what they could have read; ignored users' events are left out in SQL.  The index may
hold more than a page's worth of hidden hits, so candidates are read in rounds (at
most :data:`MAX_ROUNDS`) until the page is full.

``count`` never counts an event the user cannot see: exact when the first page holds
every result; otherwise the index's hits in the windows the user surely sees — the
rooms they are joined to, from their latest membership event on (counted up to
:data:`COUNT_CAP`) — or the page's results if more.  So it is a lower bound: hits of
``shared`` history from before a join, or of rooms left, are found but not counted.

Pages are keyset pages (search.tokens): the next one starts after the last hit
examined; a group's token starts after that group's last result, narrowed to the
group, and is given only when the index holds more of the group.

Before querying, the handler waits (at most :data:`FRESHNESS_S`, not at all while
the indexer is failing) for the indexer to reach the events stream's current
position, so a message just sent is found.  Requests are rate limited per user
(``rc_search``).

spec: client-server-api/modules/search.md, data/api/client-server/search.yaml
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.events.event import Event
from homeserver.ratelimit import RateLimiter
from homeserver.rooms.reading import RoomReader
from homeserver.rooms.serialize import EventSerializer, Viewer
from homeserver.rooms.visibility import HistoryVisibilityFilter
from homeserver.search import text
from homeserver.search.context import SearchContext
from homeserver.search.criteria import MAX_CONTEXT_EVENTS, EventContext, RoomEventsCriteria
from homeserver.search.indexer import INDEXED_KEYS, searchable_text
from homeserver.search.query import ParsedQuery, QueryParser
from homeserver.search.tokens import PageToken, decode_token
from homeserver.storage.events import EventStore
from homeserver.storage.search import (
    MEDIA_KINDS,
    ROOM_TOKEN_MAX_ROOMS,
    Hit,
    PageKey,
    RoomScope,
    SearchConditions,
    SearchStore,
    names_rooms,
)
from homeserver.storage.timeline import MembershipRow, TimelineStore

MAX_ROUNDS = 5
COUNT_CAP = 1000
FRESHNESS_S = 2.0


class IndexProgress(Protocol):
    async def wait_for(self, position: int, timeout_s: float) -> bool: ...


@attrs.frozen
class _Room:
    membership: MembershipRow
    scope: RoomScope
    #: Its rows in the index.
    docs: int


@attrs.frozen
class _Page:
    results: list[tuple[Hit, Event]]
    #: The last hit examined, where the next page starts; None when nothing is left.
    next_key: PageKey | None
    #: Visible hits examined after the page was full (they belong to later pages).
    beyond: list[Event] = attrs.Factory(list)


class SearchHandler:
    def __init__(
        self,
        *,
        enabled: bool,
        store: SearchStore,
        progress: IndexProgress,
        events: EventStore,
        timeline: TimelineStore,
        visibility: HistoryVisibilityFilter,
        serializer: EventSerializer,
        reader: RoomReader,
        context: SearchContext,
        limiter: RateLimiter,
    ) -> None:
        self._enabled = enabled
        self._store = store
        self._parser = QueryParser(store)
        self._progress = progress
        self._events = events
        self._timeline = timeline
        self._visibility = visibility
        self._serializer = serializer
        self._reader = reader
        self._context = context
        self._limiter = limiter

    async def search(
        self, requester: Requester, criteria: RoomEventsCriteria | None, next_batch: str | None
    ) -> dict[str, Any]:
        if not self._enabled:
            raise errors.MatrixError(400, errors.Codes.UNKNOWN, "Search is disabled on this server")
        self._limiter.ratelimit(requester.user_id)
        if criteria is None:
            return {"search_categories": {}}
        token = None if next_batch is None else decode_token(next_batch, criteria.order_by)
        await self._progress.wait_for(await self._events.get_max_stream_ordering(), FRESHNESS_S)
        viewer = await self._reader.viewer(requester)
        rooms = await self._rooms(requester.user_id, criteria, token)
        parsed = await self._parser.parse(criteria.search_term)
        conditions = self._conditions(requester.user_id, criteria, token, rooms, viewer)
        empty = {"results": [], "count": 0, "highlights": []}
        if conditions is None or not parsed.groups:
            return {"search_categories": {"room_events": empty}}
        room_docs = sum(room.docs for room in rooms.values())
        if len(rooms) <= ROOM_TOKEN_MAX_ROOMS:
            total = await self._store.indexed_total()
            conditions = attrs.evolve(
                conditions, room_tokens=names_rooms(len(rooms), room_docs, total)
            )
        page = await self._page(viewer, criteria, parsed, conditions, rooms, token)
        body = await self._respond(requester, viewer, criteria, parsed, page, rooms, token)
        if criteria.group_by:
            body["groups"] = await self._groups(criteria, parsed, conditions, rooms, page)
        if page.next_key is None and token is None:
            body["count"] = len(page.results)
        else:
            body["count"] = max(
                len(page.results), await self._count_seen(parsed, conditions, rooms)
            )
        return {"search_categories": {"room_events": body}}

    async def _rooms(
        self, user_id: str, criteria: RoomEventsCriteria, token: PageToken | None
    ) -> dict[str, _Room]:
        scoped_room = (
            token.group[1] if token and token.group and token.group[0] == "room_id" else None
        )
        candidates: list[tuple[MembershipRow, int | None]] = []
        for row in await self._timeline.get_memberships_for_user(user_id):
            if row.membership == "join":
                up_to = None
            elif row.membership in ("leave", "ban") and not row.forgotten:
                up_to = row.stream_ordering
            else:
                continue
            if not criteria.filter.room_allowed(row.room_id):
                continue
            if scoped_room is not None and row.room_id != scoped_room:
                continue
            candidates.append((row, up_to))
        nids = [row.room_nid for row, _ in candidates]
        # A room the indexer never met has nothing to find.
        indexed = await self._store.indexed_rooms(nids)
        candidates = [
            (row, up_to)
            for row, up_to in candidates
            if row.room_nid in indexed and not indexed[row.room_nid].encrypted
        ]
        nids = [row.room_nid for row, _ in candidates]
        firsts = await self._store.first_memberships(user_id, nids) if nids else {}
        marks = await self._store.read_marks(user_id, nids) if criteria.unread_only else {}
        rooms: dict[str, _Room] = {}
        for row, up_to in candidates:
            bounds = [
                bound
                for bound in (
                    _earliest_visible(firsts.get(row.room_nid), indexed[row.room_nid].first_open),
                    marks.get(row.room_nid),
                )
                if bound is not None
            ]
            after = max(bounds) if bounds else None
            scope = RoomScope(row.room_nid, after=after, up_to=up_to)
            rooms[row.room_id] = _Room(row, scope, indexed[row.room_nid].docs)
        return rooms

    def _conditions(
        self,
        user_id: str,
        criteria: RoomEventsCriteria,
        token: PageToken | None,
        rooms: dict[str, _Room],
        viewer: Viewer,
    ) -> SearchConditions | None:
        """What the index is asked; None if nothing can match."""
        event_filter = criteria.filter
        types = tuple(
            event_type
            for event_type, key in INDEXED_KEYS.items()
            if key in criteria.keys
            and (event_filter.types is None or event_filter.types.matches(event_type))
            and not event_filter.not_types.matches(event_type)
        )
        senders = event_filter.senders
        if token is not None and token.group is not None and token.group[0] == "sender":
            senders = frozenset({token.group[1]}) & (senders or frozenset({token.group[1]}))
        not_senders = set(event_filter.not_senders) | viewer.ignored_users
        if criteria.unread_only:
            # Unread means from others, as unread counts have it.
            not_senders.add(user_id)
        if not rooms or not types or (senders is not None and not senders):
            return None
        media = None
        if criteria.media is not None:
            media = tuple(sorted(MEDIA_KINDS[kind] for kind in criteria.media))
        return SearchConditions(
            rooms=[room.scope for room in rooms.values()],
            types=None if len(types) == len(INDEXED_KEYS) else types,
            senders=None if senders is None else tuple(sorted(senders)),
            not_senders=tuple(sorted(not_senders)),
            since_ts=criteria.since_ts,
            until_ts=criteria.until_ts,
            contains_url=event_filter.contains_url,
            media=media,
        )

    async def _page(
        self,
        viewer: Viewer,
        criteria: RoomEventsCriteria,
        parsed: ParsedQuery,
        conditions: SearchConditions,
        rooms: dict[str, _Room],
        token: PageToken | None,
    ) -> _Page:
        """Up to ``limit`` visible hits after the token's hit, reading candidates in
        rounds; the last hit examined."""
        rank = criteria.order_by == "rank"
        after = token.key if token is not None else None
        results: list[tuple[Hit, Event]] = []
        for _ in range(MAX_ROUNDS):
            fetch = min(2 * (criteria.limit - len(results)) + 5, 200)
            hits = await self._store.search(
                parsed.groups, conditions, order=criteria.order_by, limit=fetch, after=after
            )
            visible = await self._visible(viewer, criteria, hits, rooms)
            for index, hit in enumerate(hits):
                after = PageKey(hit.stream_ordering, hit.rank if rank else None)
                if hit.event_id in visible:
                    results.append((hit, visible[hit.event_id]))
                    if len(results) == criteria.limit:
                        rest = hits[index + 1 :]
                        more = bool(rest) or len(hits) == fetch
                        beyond = [visible[h.event_id] for h in rest if h.event_id in visible]
                        return _Page(results, after if more else None, beyond)
            if len(hits) < fetch:
                return _Page(results, None)
        return _Page(results, after)

    async def _visible(
        self,
        viewer: Viewer,
        criteria: RoomEventsCriteria,
        hits: Sequence[Hit],
        rooms: dict[str, _Room],
    ) -> dict[str, Event]:
        """event ID -> event, for the hits the user may see, unredacted."""
        if not hits:
            return {}
        loaded = await self._events.get_events([hit.event_id for hit in hits])
        # The index may lag a redaction by a moment: the redaction table does not.
        redacted = await self._timeline.get_redactions(list(loaded))
        by_room: dict[str, list[Event]] = {}
        for hit in hits:
            event = loaded.get(hit.event_id)
            if event is not None and event.event_id not in redacted and event.room_id in rooms:
                by_room.setdefault(event.room_id, []).append(event)
        visible: dict[str, Event] = {}
        for room_id, events in by_room.items():
            shown = await self._visibility.filter(
                viewer.user_id,
                events,
                current=rooms[room_id].membership,
                ignored_users=viewer.ignored_users,
            )
            for event in shown:
                # An erased sender's event comes back pruned: nothing left to find.
                if event is loaded[event.event_id] and criteria.filter.allows(
                    event.type, event.sender, event.room_id, event.content
                ):
                    visible[event.event_id] = event
        return visible

    async def _count_seen(
        self, parsed: ParsedQuery, conditions: SearchConditions, rooms: dict[str, _Room]
    ) -> int:
        """Hits in the rooms the user is joined to, from their latest membership event
        on: events they were in the room for, so visible (up to :data:`COUNT_CAP`)."""
        windows = []
        for room in rooms.values():
            if room.membership.membership != "join":
                continue
            after = max(room.membership.stream_ordering, room.scope.after or 0)
            windows.append(attrs.evolve(room.scope, after=after))
        if not windows:
            return 0
        return await self._store.count(
            parsed.groups, attrs.evolve(conditions, rooms=windows), COUNT_CAP
        )

    async def _respond(
        self,
        requester: Requester,
        viewer: Viewer,
        criteria: RoomEventsCriteria,
        parsed: ParsedQuery,
        page: _Page,
        rooms: dict[str, _Room],
        token: PageToken | None,
    ) -> dict[str, Any]:
        events = [event for _, event in page.results]
        serialized = await self._serializer.serialize(events, viewer)
        results = []
        budget = MAX_CONTEXT_EVENTS
        for (hit, event), client_event in zip(page.results, serialized, strict=True):
            result: dict[str, Any] = {"rank": hit.rank, "result": client_event}
            if criteria.event_context is not None:
                wanted, budget = _within_budget(criteria.event_context, budget)
                room = rooms[event.room_id]
                result["context"] = await self._context.around(
                    event,
                    room_nid=room.scope.room_nid,
                    viewer=viewer,
                    membership=room.membership,
                    wanted=wanted,
                )
            results.append(result)
        body: dict[str, Any] = {"results": results, "highlights": _highlights(parsed, events)}
        if page.next_key is not None:
            body["next_batch"] = PageToken(
                criteria.order_by, page.next_key, token.group if token else None
            ).encode()
        if criteria.include_state:
            body["state"] = {
                room_id: await self._reader.get_state(requester, room_id)
                for room_id in dict.fromkeys(event.room_id for event in events)
            }
        return body

    async def _groups(
        self,
        criteria: RoomEventsCriteria,
        parsed: ParsedQuery,
        conditions: SearchConditions,
        rooms: dict[str, _Room],
        page: _Page,
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """``groups.<key>.<value>``: the results' event IDs per room or sender, ordered
        by first appearance; a group has a ``next_batch`` — continuing after its own
        last result, within the group — only if the index holds more of it."""
        rank = criteria.order_by == "rank"
        groups: dict[str, dict[str, dict[str, Any]]] = {}
        for key in criteria.group_by:
            by_value: dict[str, dict[str, Any]] = {}
            last: dict[str, Hit] = {}
            for hit, event in page.results:
                value = _group_value(key, event)
                group = by_value.setdefault(value, {"results": [], "order": len(by_value) + 1})
                group["results"].append(event.event_id)
                last[value] = hit
            if page.next_key is not None:
                beyond = {_group_value(key, event) for event in page.beyond}
                for value, group in by_value.items():
                    after = PageKey(last[value].stream_ordering, last[value].rank if rank else None)
                    if value in beyond or await self._group_has_more(
                        criteria, parsed, conditions, rooms, (key, value), after
                    ):
                        group["next_batch"] = PageToken(
                            criteria.order_by, after, (key, value)
                        ).encode()
            groups[key] = by_value
        return groups

    async def _group_has_more(
        self,
        criteria: RoomEventsCriteria,
        parsed: ParsedQuery,
        conditions: SearchConditions,
        rooms: dict[str, _Room],
        group: tuple[str, str],
        after: PageKey,
    ) -> bool:
        key, value = group
        if key == "room_id":
            narrowed = attrs.evolve(conditions, rooms=[rooms[value].scope])
        else:
            if conditions.senders is not None and value not in conditions.senders:
                return False
            narrowed = attrs.evolve(conditions, senders=(value,))
        hits = await self._store.search(
            parsed.groups, narrowed, order=criteria.order_by, limit=1, after=after
        )
        return bool(hits)


def _earliest_visible(first_membership: int | None, first_open: int | None) -> int | None:
    """Where a room's scope may start for the user: nothing before both their first
    membership and the first event sent under open visibility can be visible to them
    (the scope's ``after`` bound is exclusive, so one before)."""
    if first_membership is None:
        # Never a member (a peek is no membership): only open history.
        return None if first_open is None else first_open - 1
    if first_open is None:
        return first_membership - 1
    return min(first_membership, first_open) - 1


def _within_budget(wanted: EventContext, budget: int) -> tuple[EventContext, int]:
    """The context this result gets of what is left of the response's budget."""
    before = min(wanted.before_limit, budget)
    after = min(wanted.after_limit, budget - before)
    return attrs.evolve(wanted, before_limit=before, after_limit=after), budget - before - after


def _group_value(key: str, event: Event) -> str:
    return event.room_id if key == "room_id" else event.sender


def _highlights(parsed: ParsedQuery, events: Sequence[Event]) -> list[str]:
    """The words of the results that matched, as written in them (typo and prefix
    matches included), so clients can highlight them; the typed words if none."""
    found: dict[str, None] = {}
    for event in events:
        searched = searchable_text(event)
        for surface in text.surface_words(searched or ""):
            if any(parsed.matches(word) for word in text.words(surface)):
                found[surface] = None
    return sorted(found) if found else list(parsed.words)
