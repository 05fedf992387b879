"""The legacy read APIs still in the spec: ``/events``, ``/events/{eventId}``,
``/initialSync`` and ``/rooms/{roomId}/initialSync``.

They are views over the machinery ``/sync`` and ``/messages`` use, not a second copy
of it: history comes from :class:`RoomReader` (access checks, history visibility,
pagination tokens), the event stream from the timeline store, the history visibility
filter and the notifier exactly as ``/sync`` reads them, ephemeral events from the
receipts and typing handlers, account data from its handler.

Where the spec says nothing, this does what Synapse does (said where it matters):
a peeking non-member of a ``world_readable`` room gets ``membership: join`` from
``/rooms/{roomId}/initialSync``; ``/initialSync`` has a top-level ``receipts`` list;
``/events`` carries typing and receipt events (with ``room_id``) along with room
events.

spec: client-server-api/_index.md#get_matrixclientv3events,
#get_matrixclientv3initialsync, #get_matrixclientv3roomsroomidinitialsync,
#get_matrixclientv3eventseventid, modules/guest_access.md (peeking with ``room_id``)
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.directory.handler import DirectoryHandler
from homeserver.events.event import Event
from homeserver.filtering.model import RoomEventFilter
from homeserver.rooms.reading import RoomAccess, RoomReader
from homeserver.rooms.visibility import HISTORY_VISIBILITY_KEY
from homeserver.storage.timeline import MembershipRow
from homeserver.streams.token import StreamToken
from homeserver.sync.sources import SyncSources

#: Messages per room in ``/initialSync`` when ``limit`` is not given (as ``/sync``).
DEFAULT_INITIAL_SYNC_LIMIT = 10
MAX_INITIAL_SYNC_LIMIT = 1000
#: Room events in one ``/events`` answer; the ``end`` token resumes after the last.
EVENT_STREAM_LIMIT = 100
MAX_TIMEOUT_MS = 5 * 60 * 1000

_EVERYTHING = RoomEventFilter()


class LegacySyncHandler:
    def __init__(
        self,
        sources: SyncSources,
        *,
        reader: RoomReader,
        directory: DirectoryHandler,
    ) -> None:
        self._sources = sources
        self._reader = reader
        self._directory = directory

    # --- GET /events/{eventId} ---------------------------------------------------------

    async def get_event(self, requester: Requester, event_id: str) -> dict[str, Any]:
        """The event if the requester may see it (as ``/rooms/{roomId}/event``); 404
        otherwise.  spec: #get_matrixclientv3eventseventid"""
        event = (await self._sources.events.get_events([event_id])).get(event_id)
        if event is None:
            raise errors.not_found("Event not found")
        return await self._reader.get_event(requester, event.room_id, event_id)

    # --- GET /initialSync and /rooms/{roomId}/initialSync --------------------------------

    async def initial_sync(
        self, requester: Requester, *, limit: int | None, archived: bool
    ) -> dict[str, Any]:
        """Every room the user is in or invited to (and left, with ``archived``), each
        with its latest messages and its state: current, or as of the leave.

        spec: #get_matrixclientv3initialsync
        """
        user_id = requester.user_id
        now = self._sources.notifier.current_token
        wanted = {"join", "invite"} | ({"leave", "ban"} if archived else set())
        rows = [
            row
            for row in await self._sources.timeline.get_memberships_for_user(user_id)
            if row.membership in wanted
            and row.stream_ordering <= now.events
            and not (row.forgotten and row.membership in ("leave", "ban"))
        ]
        account = await self._sources.account_data.changes(
            user_id, 0, now.account_data, initial=True
        )
        rooms = []
        for row in sorted(rows, key=lambda r: r.stream_ordering):
            info: dict[str, Any] = {
                "room_id": row.room_id,
                "membership": row.membership,
                "visibility": await self._directory.get_visibility(row.room_id),
            }
            if row.membership == "invite":
                invite = (await self._sources.events.get_events([row.event_id])).get(row.event_id)
                if invite is not None:
                    info["invite"] = await self._sources.serializer.serialize_one(
                        invite, await self._reader.viewer(requester)
                    )
            else:
                info.update(await self._room_snapshot(requester, row, now, _limit(limit)))
                info["account_data"] = _events_of(account.room_data.get(row.room_id, {}))
            rooms.append(info)
        joined = [row.room_id for row in rows if row.membership == "join"]
        receipts = await self._sources.receipts.receipts_for_rooms(
            joined, 0, now.receipts, for_user=user_id
        )
        return {
            "end": now.to_string(),
            "rooms": rooms,
            "presence": await self._sources.presence.sync_events(user_id, None, now.presence),
            "account_data": _events_of(account.global_data),
            # As Synapse: the receipts of joined rooms, each event with its room.
            "receipts": [{**event, "room_id": room_id} for room_id, event in receipts.items()],
        }

    async def room_initial_sync(
        self, requester: Requester, room_id: str, *, limit: int | None
    ) -> dict[str, Any]:
        """One room as ``/initialSync`` shows it, for members, former members (as of
        their leave) and anyone when the room is ``world_readable``; 403 otherwise.

        spec: #get_matrixclientv3roomsroomidinitialsync
        """
        access = await self._reader.access(requester, room_id)
        now = self._sources.notifier.current_token
        row = access.membership
        body: dict[str, Any] = {"room_id": room_id}
        if row is not None and row.membership in ("join", "leave", "ban"):
            body["membership"] = row.membership
            body.update(await self._room_snapshot(requester, row, now, _limit(limit)))
        else:
            # Peeking into a world_readable room (an invitee included): Synapse answers
            # as for a member, "membership": "join", with the current room.
            body["membership"] = "join"
            body.update(await self._current_snapshot(requester, room_id, now, _limit(limit)))
        if body["membership"] == "join":
            receipts = await self._sources.receipts.receipts_for_rooms(
                [room_id], 0, now.receipts, for_user=requester.user_id
            )
            body["receipts"] = list(receipts.values())
        else:
            body["receipts"] = []
        body["presence"] = (
            await self._sources.presence.members_presence(room_id)
            if body["membership"] == "join"
            else []
        )
        body["visibility"] = await self._directory.get_visibility(room_id)
        account = await self._sources.account_data.changes(requester.user_id, 0, now.account_data)
        body["account_data"] = _events_of(account.room_data.get(room_id, {}))
        return body

    async def _room_snapshot(
        self, requester: Requester, row: MembershipRow, now: StreamToken, limit: int
    ) -> dict[str, Any]:
        if row.membership == "join":
            return await self._current_snapshot(requester, row.room_id, now, limit)
        # Left or banned: the messages up to the leave and the state it made.
        leave = (await self._sources.events.get_events([row.event_id])).get(row.event_id)
        if leave is None:
            return {"messages": {"chunk": [], "end": now.to_string()}, "state": []}
        messages = await self._messages(
            requester, row.room_id, now.with_position("events", row.stream_ordering), limit
        )
        state = await self._sources.state.events_for_state(
            await self._sources.state.state_after(leave)
        )
        return {
            "messages": messages,
            "state": await self._sources.serializer.serialize(
                [state[key] for key in sorted(state)],
                await self._reader.viewer(requester),
                bundle_aggregations=False,
            ),
        }

    async def _current_snapshot(
        self, requester: Requester, room_id: str, now: StreamToken, limit: int
    ) -> dict[str, Any]:
        return {
            "messages": await self._messages(requester, room_id, now, limit),
            "state": await self._reader.get_state(requester, room_id),
        }

    async def _messages(
        self, requester: Requester, room_id: str, up_to: StreamToken, limit: int
    ) -> dict[str, Any]:
        """The ``limit`` latest visible events up to ``up_to``, oldest first, as a
        ``PaginationChunk``: ``start`` pages back with ``/messages``, ``end`` is
        ``up_to``."""
        page = await self._reader.messages(
            requester,
            room_id,
            from_token=up_to.to_string(),
            to_token=None,
            direction="b",
            limit=limit,
            event_filter=_EVERYTHING,
        )
        messages: dict[str, Any] = {"chunk": list(reversed(page["chunk"])), "end": page["start"]}
        if "end" in page:
            # The spec lets "start" be left out when there is nothing earlier.
            messages["start"] = page["end"]
        return messages

    # --- GET /events ---------------------------------------------------------------------

    async def event_stream(
        self,
        requester: Requester,
        *,
        from_token: StreamToken | None,
        timeout_ms: int,
        room_id: str | None,
    ) -> dict[str, Any]:
        """Events after ``from_token`` (now if absent) in the user's rooms, or in
        ``room_id`` (joined, or peeked at when ``world_readable``); waits up to
        ``timeout_ms`` for some.  spec: #get_matrixclientv3events, #peeking-events
        """
        deadline = self._sources.clock.time_msec() + min(max(timeout_ms, 0), MAX_TIMEOUT_MS)
        peek = await self._peek_access(requester, room_id) if room_id is not None else None
        start = from_token if from_token is not None else self._sources.notifier.current_token
        since = start
        while True:
            now = self._sources.notifier.current_token
            chunk, end, room_ids = await self._stream_between(requester, since, now, room_id, peek)
            remaining = deadline - self._sources.clock.time_msec()
            if chunk or remaining <= 0:
                return {"chunk": chunk, "start": start.to_string(), "end": end.to_string()}
            # Nothing yet: wait for a change concerning the user or the rooms, from now.
            since = since.advanced_to(now)
            woken = await self._sources.notifier.wait_for_changes(
                requester.user_id, room_ids, now, int(remaining)
            )
            if not woken:
                # ``since`` (covering what was read), not the notifier's newer
                # position, which may include a change not yet announced to the rooms.
                return {"chunk": [], "start": start.to_string(), "end": since.to_string()}

    async def _peek_access(self, requester: Requester, room_id: str) -> RoomAccess:
        """Access to stream one room: joined, or the room is ``world_readable`` (as
        Synapse, former members may not peek into rooms that are not)."""
        access = await self._reader.access(requester, room_id)
        if access.membership is not None and access.membership.membership == "join":
            return access
        state = await self._sources.state.current_state(access.room, [HISTORY_VISIBILITY_KEY])
        event = state.get(HISTORY_VISIBILITY_KEY)
        if event is None or event.content.get("history_visibility") != "world_readable":
            raise errors.forbidden("You are not allowed to read this room")
        return access

    async def _stream_between(
        self,
        requester: Requester,
        since: StreamToken,
        now: StreamToken,
        room_id: str | None,
        peek: RoomAccess | None,
    ) -> tuple[list[dict[str, Any]], StreamToken, list[str]]:
        """The visible events in ``(since, now]`` with the token to go on from, and the
        rooms a wait should watch."""
        user_id = requester.user_id
        viewer = await self._reader.viewer(requester)
        if peek is not None:
            rooms = {peek.room.room_nid: (peek.room.room_id, peek.membership)}
            extra: list[MembershipRow] = []
        else:
            memberships = await self._sources.timeline.get_memberships_for_user(user_id)
            rooms = {
                row.room_nid: (row.room_id, row) for row in memberships if row.membership == "join"
            }
            # The user's own membership changes in rooms they are not joined to now:
            # an invite, a kick, their leave.
            extra = [
                row
                for row in await self._sources.timeline.get_membership_changes(
                    user_id, since.events, now.events
                )
                if row.room_nid not in rooms
            ]
        busy = await self._sources.timeline.get_rooms_with_events_after(
            list(rooms), since.events, now.events
        )
        fetched: list[tuple[Event, MembershipRow | None]] = []
        # A room with more events than fit ends the answer at its last one fetched, so
        # nothing is skipped: the next request resumes from there.
        cutoff = now.events
        for room_nid in busy:
            batch = await self._sources.timeline.get_room_events(
                room_nid,
                after=since.events,
                up_to=now.events,
                direction="f",
                limit=EVENT_STREAM_LIMIT,
            )
            if len(batch) == EVENT_STREAM_LIMIT:
                cutoff = min(cutoff, batch[-1].internal.stream_ordering or cutoff)
            current = rooms[room_nid][1]
            fetched.extend((event, current) for event in batch)
        member_events = await self._sources.events.get_events([row.event_id for row in extra])
        for row in extra:
            event = member_events.get(row.event_id)
            if event is not None:
                fetched.append((event, row))
        fetched.sort(key=lambda pair: pair[0].internal.stream_ordering or 0)
        fetched = [pair for pair in fetched if (pair[0].internal.stream_ordering or 0) <= cutoff][
            :EVENT_STREAM_LIMIT
        ]
        if len(fetched) == EVENT_STREAM_LIMIT:
            cutoff = fetched[-1][0].internal.stream_ordering or cutoff
        visible: list[Event] = []
        for event, current in fetched:
            # The filter's copy: an erased sender's event may come back redacted.
            visible.extend(
                await self._sources.visibility.filter(
                    user_id, [event], current=current, ignored_users=viewer.ignored_users
                )
            )
        chunk = await self._sources.serializer.serialize(visible, viewer)
        end = now.with_position("events", cutoff)
        watched = [room_id for room_id, _ in rooms.values()]
        if peek is None or (peek.membership is not None and peek.membership.membership == "join"):
            chunk.extend(await self._ephemeral(user_id, watched, since, now))
        return chunk, end, watched

    async def _ephemeral(
        self, user_id: str, room_ids: list[str], since: StreamToken, now: StreamToken
    ) -> list[dict[str, Any]]:
        """Typing and receipt changes, each event with its ``room_id`` (as Synapse)."""
        result: list[dict[str, Any]] = []
        # A position from the future (another server run for typing) reads as "all".
        typing_from = since.typing if since.typing <= now.typing else 0
        for room_id, event in sorted(
            self._sources.typing.typing_events(room_ids, typing_from).items()
        ):
            result.append({**event, "room_id": room_id})
        receipts_from = since.receipts if since.receipts <= now.receipts else 0
        receipts = await self._sources.receipts.receipts_for_rooms(
            room_ids, receipts_from, now.receipts, for_user=user_id
        )
        for room_id, event in sorted(receipts.items()):
            result.append({**event, "room_id": room_id})
        return result


def _limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_INITIAL_SYNC_LIMIT
    return max(0, min(limit, MAX_INITIAL_SYNC_LIMIT))


def _events_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"type": event_type, "content": content} for event_type, content in sorted(data.items())
    ]
