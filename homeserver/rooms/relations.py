"""Reading relations: the child events of an event, and the threads of a room.

``/relations`` pages through the events that point at a parent through
``m.relates_to`` (edits, reactions, thread replies, references), newest first by
default; ``recurse`` also follows relations of those events, up to
:data:`RECURSION_DEPTH` steps from the parent, only through events that match the
requested ``rel_type``/``event_type``.  Its tokens are stream tokens, so a
``/messages`` ``start`` or a ``/sync`` ``next_batch`` works as ``from``/``to``:
position P sits after every event whose stream position is <= P.

``/threads`` lists thread roots by latest activity (their newest ``m.thread``
reply), optionally only the threads the user started or replied in.

Both show only what the requester may see: the room must be readable (403
otherwise), the parent event visible (404 otherwise), and children pass history
visibility and ignored users.  Relations removed by redaction are gone from the
store, so they vanish here too.

spec: client-server-api/_index.md#forming-relationships-between-events,
#aggregations-of-child-events, #relationships-api, modules/threading.md
(#querying-threads-in-a-room), data/api/client-server/relations.yaml,
threads_list.yaml
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import attrs

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.events.event import Event
from homeserver.events.redaction import prune_event_dict
from homeserver.rooms.reading import RoomAccess, RoomReader
from homeserver.rooms.serialize import EventSerializer
from homeserver.rooms.visibility import HistoryVisibilityFilter
from homeserver.storage.events import EventStore
from homeserver.storage.timeline import Direction, TimelineStore
from homeserver.streams.token import StreamToken, TopologicalToken, parse_pagination_token

#: How many steps from the parent ``recurse=true`` follows (the spec asks for >= 3).
RECURSION_DEPTH = 3

ThreadInclude = Literal["all", "participated"]

#: Upper bound on store reads for one page when visibility hides events.
_MAX_SCAN_ROUNDS = 10
_THREADS_TOKEN_PREFIX = "t"
_MAX_POSITION = 2**63 - 1


@attrs.frozen
class RelationsQuery:
    """What ``/relations`` was asked for (validated by the servlet)."""

    limit: int
    direction: Direction = "b"
    rel_type: str | None = None
    event_type: str | None = None
    from_token: str | None = None
    to_token: str | None = None
    #: None when the client did not send ``recurse`` (then no ``recursion_depth``).
    recurse: bool | None = None


class RelationsHandler:
    def __init__(
        self,
        *,
        events: EventStore,
        timeline: TimelineStore,
        visibility: HistoryVisibilityFilter,
        serializer: EventSerializer,
        reader: RoomReader,
    ) -> None:
        self._events = events
        self._timeline = timeline
        self._visibility = visibility
        self._serializer = serializer
        self._reader = reader

    async def relations(
        self, requester: Requester, room_id: str, parent_id: str, query: RelationsQuery
    ) -> dict[str, Any]:
        """spec: #get_matrixclientv1roomsroomidrelationseventid (and the two longer forms)"""
        if query.limit < 1:
            raise errors.invalid_param("'limit' must be at least 1")
        access = await self._reader.access(requester, room_id)
        await self._check_parent(requester, access, parent_id)
        start = None if query.from_token is None else _stream_token(query.from_token, "from")
        stop = None if query.to_token is None else _stream_token(query.to_token, "to").events
        backwards = query.direction == "b"
        position = start.events if start is not None else None
        depth = RECURSION_DEPTH if query.recurse else 1
        chunk: list[Event] = []
        more = True
        for _ in range(_MAX_SCAN_ROUNDS):
            # One more than asked for tells whether another page exists.
            want = query.limit + 1 - len(chunk)
            batch = await self._timeline.get_related_events(
                parent_id,
                room_nid=access.room.room_nid,
                rel_type=query.rel_type,
                event_type=query.event_type,
                max_depth=depth,
                after=stop if backwards else position,
                up_to=position if backwards else stop,
                direction=query.direction,
                limit=want,
            )
            if batch:
                last = batch[-1].internal.stream_ordering or 0
                position = last - 1 if backwards else last
                chunk.extend(await self._reader.visible_events(requester, access, batch))
            if len(chunk) > query.limit:
                del chunk[query.limit :]
                # The next page starts right after the last event of this one.
                last = chunk[-1].internal.stream_ordering or 0
                position = last - 1 if backwards else last
                break
            if len(batch) < want:
                more = False
                break
        base = start if start is not None else StreamToken()
        body: dict[str, Any] = {
            "chunk": await self._serializer.serialize(chunk, await self._reader.viewer(requester))
        }
        if more and position is not None:
            body["next_batch"] = base.with_position("events", max(position, 0)).to_string()
        if start is not None:
            body["prev_batch"] = start.to_string()
        if query.recurse is not None:
            body["recursion_depth"] = depth
        return body

    async def threads(
        self,
        requester: Requester,
        room_id: str,
        *,
        include: ThreadInclude,
        from_token: str | None,
        limit: int,
    ) -> dict[str, Any]:
        """Thread roots, latest activity first.  spec: #get_matrixclientv1roomsroomidthreads

        Roots sent by an ignored user are shown redacted (as a client aggregating
        locally would see them).
        """
        if limit < 1:
            raise errors.invalid_param("'limit' must be at least 1")
        access = await self._reader.access(requester, room_id)
        viewer = await self._reader.viewer(requester)
        before = parse_threads_token(from_token) if from_token is not None else None
        roots: list[tuple[Event, int]] = []
        more = True
        for _ in range(_MAX_SCAN_ROUNDS):
            want = limit + 1 - len(roots)
            if include == "participated":
                rows = await self._timeline.get_participated_thread_roots(
                    access.room.room_nid, requester.user_id, before=before, limit=want
                )
            else:
                rows = await self._timeline.get_thread_roots(
                    access.room.room_nid, before=before, limit=want
                )
            if rows:
                before = rows[-1][1]
                roots.extend(await self._visible_roots(requester, access, rows))
            if len(roots) > limit:
                del roots[limit:]
                before = roots[-1][1]
                break
            if len(rows) < want:
                more = False
                break
        events = [root for root, _ in roots]
        chunk = await self._serializer.serialize(events, viewer)
        for event, body in zip(events, chunk, strict=True):
            if event.sender in viewer.ignored_users:
                body["content"] = prune_event_dict(event.pdu, event.room_version).get("content", {})
        result: dict[str, Any] = {"chunk": chunk}
        if more and before is not None:
            result["next_batch"] = f"{_THREADS_TOKEN_PREFIX}{before}"
        return result

    async def _check_parent(self, requester: Requester, access: RoomAccess, parent_id: str) -> None:
        """404 unless the parent is an event of this room the requester may see."""
        parent = (await self._events.get_events([parent_id])).get(parent_id)
        if (
            parent is None
            or parent.room_id != access.room.room_id
            or parent.internal.outlier
            or parent.rejected
            or parent.internal.soft_failed
            or not await self._visibility.filter(
                requester.user_id, [parent], current=access.membership
            )
        ):
            raise errors.not_found("Event not found")

    async def _visible_roots(
        self, requester: Requester, access: RoomAccess, rows: Sequence[tuple[str, int]]
    ) -> list[tuple[Event, int]]:
        """The roots of ``rows`` that are events of this room the requester may see
        (ignored senders included: their roots are shown redacted)."""
        loaded = await self._events.get_events([root for root, _ in rows])
        candidates = [
            (event, latest)
            for event_id, latest in rows
            if (event := loaded.get(event_id)) is not None
            and event.room_id == access.room.room_id
            and not event.internal.outlier
            and not event.rejected
            and not event.internal.soft_failed
        ]
        visible = {
            event.event_id
            for event in await self._visibility.filter(
                requester.user_id, [event for event, _ in candidates], current=access.membership
            )
        }
        return [(event, latest) for event, latest in candidates if event.event_id in visible]


def parse_threads_token(token: str) -> int:
    """The position in a ``/threads`` ``next_batch``; 400 ``M_INVALID_PARAM`` otherwise."""
    digits = token[len(_THREADS_TOKEN_PREFIX) :]
    if (
        not token.startswith(_THREADS_TOKEN_PREFIX)
        or not (digits.isascii() and digits.isdecimal())
        or int(digits) > _MAX_POSITION
    ):
        raise errors.invalid_param("'from' is not a valid token")
    return int(digits)


def _stream_token(text: str, param: str) -> StreamToken:
    """``from``/``to``: our own tokens, or a ``/messages`` one ("Can be ... a returned
    ``start`` token from /messages").  Relations page by arrival, so a topological
    token is read as the stream position of the event it follows (backfilled
    events, below 0, as 0).  spec: #get_matrixclientv1roomsroomidrelationseventid
    """
    token = parse_pagination_token(text, param=param)
    if isinstance(token, TopologicalToken):
        return StreamToken(events=max(token.stream, 0))
    return token
