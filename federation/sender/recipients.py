"""Which servers receive each local event.

spec: server-server-api.md#pdus ("each PDU contains a single room event which the
origin server wants to send to the destination"): every server with a joined member
in the room in the state after the event, and for a membership event also the server
of its target (an invitee, a kicked or banned user: their server must hear of it
although it may have no joined member left), never ourselves.  Remote events a
remote server made through us (``send_join``, ``send_leave``, ``send_knock``) are
passed on the same way to every server but their origin, as Synapse does for
events it sends "on behalf of" another server: :meth:`forward` records them in
``federation_forwarded_events`` before they are persisted, so the stream consumer
and catch-up find them even after a restart.

Per room, the joined members are counted per server *as of a stream position* and
kept in an LRU; the consumer reads every visible event in stream order, so each
membership event it passes moves the counts (with the membership it replaced).  A
room not in memory is read from ``room_memberships`` — the current membership, which
may be ahead of the events being read — and each membership set by an event past the
position wanted is taken back along its ``replaces_state`` chain, so an event sent
before a remote user joined never reaches their server, and one sent before they
left does.  (Membership moved by state resolution alone, with no event of its own,
is seen when the room is next read from the table.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import attrs

from homeserver.events.auth.ids import domain_of
from homeserver.events.event import Event
from homeserver.storage.events import EventStore
from homeserver.storage.federation_outbound import FederationOutboundStore
from homeserver.streams.consumer import StreamedEvent
from homeserver.util.caches import LruCache

#: Rooms whose per-server member counts are kept in memory.
ROOM_CACHE_SIZE = 10_000
#: Membership events followed back (``replaces_state``) to find a membership as of
#: a position; a longer chain of changes since then counts as "not joined".
MAX_CHAIN = 20


@attrs.define
class _RoomServers:
    #: Joined members per server after every event up to ``as_of``.
    counts: Counter[str]
    as_of: int


#: ``room_id`` -> the servers the resident named at our partial-state join
#: (``servers_in_room``) while the room's member list is incomplete, else empty.
PartialServers = Callable[[str], Awaitable[frozenset[str]]]


class EventRecipients:
    def __init__(
        self,
        *,
        server_name: str,
        store: FederationOutboundStore,
        events: EventStore,
        allowed: Callable[[str], bool] = lambda _destination: True,
        partial_servers: PartialServers | None = None,
    ) -> None:
        """``allowed``: False for servers we must not send to
        (``federation_domain_whitelist``).  ``partial_servers``: a room joined with
        partial state lacks most members, so its events also go to the servers that
        were in it at the join."""
        self._partial_servers = partial_servers
        self._server_name = server_name
        self._store = store
        self._events = events
        self._allowed = allowed
        self._rooms: LruCache[int, _RoomServers] = LruCache(ROOM_CACHE_SIZE)

    async def forward(self, event_id: str, origin: str, now_ms: int) -> None:
        """Send the remote event ``event_id`` as if it were ours, except to ``origin``:
        a join, leave or knock a remote server made through us (``send_join`` ...),
        which the other servers in the room hear of from the resident server.
        Stored: call it before the event is persisted."""
        await self._store.add_forwarded(event_id, origin, now_ms)

    async def _forwarded(self, events: Sequence[StreamedEvent]) -> dict[str, str]:
        """Of ``events``, the remote ones to pass on (event ID -> origin): only remote
        membership events can be, so other events cost no read."""
        candidates = [
            s.event.event_id
            for s in events
            if s.event.membership is not None and not self.is_local(s.event)
        ]
        return await self._store.forwarded_origins(candidates) if candidates else {}

    def is_local(self, event: Event) -> bool:
        return domain_of(event.sender) == self._server_name

    async def for_batch(
        self, batch: Sequence[StreamedEvent]
    ) -> list[tuple[StreamedEvent, int, frozenset[str]]]:
        """``(event, room_nid, destinations)`` for each local event of ``batch`` that
        has any, in stream order."""
        found: list[tuple[StreamedEvent, int, frozenset[str]]] = []
        room_nids: dict[str, int | None] = {}
        forwarded = await self._forwarded(batch)
        for streamed in batch:
            event = streamed.event
            origin = forwarded.get(event.event_id)
            local = origin is not None or self.is_local(event)
            if not local and event.membership is None:
                continue
            if event.room_id not in room_nids:
                room = await self._events.get_room(event.room_id)
                room_nids[event.room_id] = None if room is None else room.room_nid
            room_nid = room_nids[event.room_id]
            if room_nid is None:
                continue
            servers = self._rooms.get(room_nid)
            if servers is None:
                if not local:
                    continue  # Read when a local event needs it, as of that event.
                servers = await self._read(room_nid, streamed.position - 1)
                self._rooms.set(room_nid, servers)
            if streamed.position > servers.as_of:
                await self._apply(servers, streamed)
            if local:
                destinations = self._destinations(servers, event)
                destinations |= await self._partial_destinations(event.room_id)
                if origin is not None:
                    destinations -= {origin}
                if destinations:
                    found.append((streamed, room_nid, destinations))
        return found

    async def due_to(
        self, destination: str, room_nid: int, after: int, events: Sequence[StreamedEvent]
    ) -> list[StreamedEvent]:
        """Those of ``events`` (every visible event of the room after stream position
        ``after``, in order) that are local and were due to ``destination``: what a
        destination that acknowledged up to ``after`` missed in the room (catch-up)."""
        servers = await self._read(room_nid, after)
        forwarded = await self._forwarded(events)
        due: list[StreamedEvent] = []
        for streamed in events:
            await self._apply(servers, streamed)
            event = streamed.event
            origin = forwarded.get(event.event_id)
            if origin == destination or not (origin is not None or self.is_local(event)):
                continue
            if destination in self._destinations(servers, event) or (
                destination in await self._partial_destinations(event.room_id)
            ):
                due.append(streamed)
        return due

    def forget_room(self, room_nid: int) -> None:
        """Count the room's servers afresh: its membership index changed without
        events (a partial-state room was completed)."""
        self._rooms.invalidate(room_nid)

    async def _partial_destinations(self, room_id: str) -> frozenset[str]:
        if self._partial_servers is None:
            return frozenset()
        servers = await self._partial_servers(room_id)
        return frozenset(s for s in servers if s != self._server_name and self._allowed(s))

    def _destinations(self, servers: _RoomServers, event: Event) -> frozenset[str]:
        names = {server for server, count in servers.counts.items() if count > 0}
        if event.membership is not None and event.state_key is not None:
            target = domain_of(event.state_key)
            if target is not None:
                names.add(target)
        names.discard(self._server_name)
        return frozenset(name for name in names if self._allowed(name))

    async def _apply(self, servers: _RoomServers, streamed: StreamedEvent) -> None:
        event = streamed.event
        servers.as_of = streamed.position
        if event.membership is None or event.state_key is None:
            return
        server = domain_of(event.state_key)
        if server is None:
            return
        was_joined = await self._replaced_membership(event) == "join"
        if was_joined != (event.membership == "join"):
            servers.counts[server] += -1 if was_joined else 1

    async def _replaced_membership(self, event: Event) -> str | None:
        previous_id = event.internal.replaces_state
        if previous_id is None:
            return None
        previous = (await self._events.get_events([previous_id])).get(previous_id)
        return None if previous is None else previous.membership

    async def _read(self, room_nid: int, as_of: int) -> _RoomServers:
        counts: Counter[str] = Counter()
        for row in await self._store.memberships(room_nid, as_of):
            membership: str | None = row.membership
            if row.position is not None and row.position > as_of:
                membership = await self._membership_as_of(row.event_id, as_of)
            server = domain_of(row.user_id)
            if membership == "join" and server is not None:
                counts[server] += 1
        return _RoomServers(counts, as_of)

    async def _membership_as_of(self, event_id: str, position: int) -> str | None:
        """The membership in force at ``position``, going back from the membership
        event ``event_id`` (set later) along what each replaced."""
        current: str | None = event_id
        for _ in range(MAX_CHAIN):
            if current is None:
                return None
            event = (await self._events.get_events([current])).get(current)
            if event is None:
                return None
            stream_ordering = event.internal.stream_ordering
            if stream_ordering is None or stream_ordering <= position:
                return event.membership
            current = event.internal.replaces_state
        return None
