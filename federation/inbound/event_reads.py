"""Serving the room graph to other servers: an event, the state at an event, an
event's auth chain, the events between two points (``get_missing_events``).

Only a server with a member joined to the room (its current state) may read it,
and only if the room's server ACL lets it in.  Events it could not see under the
room's history visibility at the time, or whose sender was erased at deactivation,
are served redacted, as Synapse does, so the graph stays whole for it while the
content stays private: ``world_readable`` and ``shared`` (the default) history is
visible to any server in the room; ``invited`` and ``joined`` only where one of the
server's users was invited (for ``invited``) or joined in the state after the event
(Synapse's rule: a server's own join is served whole).

spec: server-server-api.md#retrieving-events (data/api/server-server/events.yaml),
#get_matrixfederationv1event_authroomideventid (event_auth.yaml),
#post_matrixfederationv1get_missing_eventsroomid (backfill.yaml),
client-server-api/modules/history_visibility.md ("Server behaviour"),
server-server-api.md#server-access-control-lists-acls
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from federation.protocols import ServerAclCheck
from homeserver import errors
from homeserver.clock import Clock
from homeserver.events.event import Event, StateKey
from homeserver.events.redaction import prune_event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.storage.erased_users import ErasedUserStore
from homeserver.storage.event_graph import AuthChainTooLarge, StoredPdu
from homeserver.storage.events import EventStore, RoomRecord
from homeserver.storage.state import StateStore

logger = logging.getLogger(__name__)

#: ``get_missing_events`` answers at most this many events (Synapse: 20 by default).
MAX_MISSING_EVENTS = 50
#: Entries ``earliest_events``/``latest_events`` may hold.
MAX_MISSING_EVENT_IDS = 50
_HISTORY_VISIBILITY: StateKey = ("m.room.history_visibility", "")


#: The ACL as these reads use it (kept for importers of this name).
AclCheck = ServerAclCheck


class EventGraphReads(Protocol):
    """The graph reads of ``homeserver.storage.event_graph.EventGraphStore``."""

    async def get_pdu_json(self, event_ids: Collection[str]) -> Mapping[str, StoredPdu]: ...

    async def get_auth_chain_ids(
        self, event_ids: Collection[str], *, include_given: bool = False
    ) -> set[str]: ...

    async def get_state_ids_before(self, event_id: str) -> Mapping[StateKey, str] | None: ...

    async def get_missing_events(
        self,
        room_id: str,
        *,
        earliest: Collection[str],
        latest: Collection[str],
        limit: int,
        min_depth: int,
    ) -> Sequence[StoredPdu]: ...

    async def get_joined_servers(self, room_id: str) -> frozenset[str]: ...

    async def get_servers_at(self, event_id: str) -> frozenset[str] | None: ...


class EventReadHandler:
    def __init__(
        self,
        *,
        server_name: str,
        events: EventStore,
        state: StateStore,
        graph: EventGraphReads,
        acl: AclCheck,
        clock: Clock,
        erased: ErasedUserStore | None = None,
        partial_state: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        """``partial_state``: whether we joined a room with partial state and are
        still fetching its members (its state is then not ours to tell)."""
        self._partial_state = partial_state
        self._server_name = server_name
        self._erased = erased
        self._events = events
        self._state = state
        self._graph = graph
        self._acl = acl
        self._clock = clock

    async def get_event(self, origin: str, event_id: str) -> dict[str, Any]:
        """spec: GET /_matrix/federation/v1/event/{eventId} (a one-PDU transaction)"""
        event = await self._stored_event(event_id)
        room = await self._room_for(origin, event.room_id)
        [shown] = await self._as_seen_by(origin, room, [event])
        return {
            "origin": self._server_name,
            "origin_server_ts": self._clock.time_msec(),
            "pdus": [shown.pdu],
        }

    async def get_state_ids(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        """spec: GET /_matrix/federation/v1/state_ids/{roomId}?event_id="""
        state_ids, chain_ids = await self._state_and_auth_chain(origin, room_id, event_id)
        return {"pdu_ids": state_ids, "auth_chain_ids": chain_ids}

    async def get_state(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        """spec: GET /_matrix/federation/v1/state/{roomId}?event_id="""
        state_ids, chain_ids = await self._state_and_auth_chain(origin, room_id, event_id)
        pdus = await self._graph.get_pdu_json([*state_ids, *chain_ids])
        return {
            "pdus": [pdus[e].pdu() for e in state_ids if e in pdus],
            "auth_chain": [pdus[e].pdu() for e in chain_ids if e in pdus],
        }

    async def get_event_auth(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        """spec: GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}"""
        room = await self._room_for(origin, room_id)
        event = await self._stored_event(event_id)
        if event.room_id != room_id:
            raise errors.not_found("Event not found in this room")
        chain_ids = await self._auth_chain(room, [event_id])
        pdus = await self._graph.get_pdu_json(chain_ids)
        return {"auth_chain": [pdus[e].pdu() for e in chain_ids if e in pdus]}

    async def get_missing_events(
        self,
        origin: str,
        room_id: str,
        *,
        earliest: Sequence[str],
        latest: Sequence[str],
        limit: int,
        min_depth: int,
    ) -> dict[str, Any]:
        """spec: POST /_matrix/federation/v1/get_missing_events/{roomId}"""
        room = await self._room_for(origin, room_id)
        if len(earliest) > MAX_MISSING_EVENT_IDS or len(latest) > MAX_MISSING_EVENT_IDS:
            raise errors.bad_json(
                f"earliest_events and latest_events hold at most {MAX_MISSING_EVENT_IDS} IDs"
            )
        found = await self._graph.get_missing_events(
            room_id,
            earliest=earliest,
            latest=latest,
            limit=max(0, min(limit, MAX_MISSING_EVENTS)),
            min_depth=min_depth,
        )
        loaded = await self._events.get_events([pdu.event_id for pdu in found])
        events = [loaded[pdu.event_id] for pdu in found if pdu.event_id in loaded]
        shown = await self._as_seen_by(origin, room, events)
        return {"events": [e.pdu for e in shown]}

    # --- access --------------------------------------------------------------------

    async def _room_for(self, origin: str, room_id: str) -> RoomRecord:
        """The room, if ``origin`` may read it: ACL, then a member joined now."""
        room = await self._events.get_room(room_id)
        if room is None:
            raise errors.not_found("Unknown room")
        await self._acl.check(origin, room_id)
        if origin not in await self._graph.get_joined_servers(room_id):
            raise errors.forbidden("Host not in room")
        return room

    async def _stored_event(self, event_id: str) -> Event:
        found = await self._events.get_events([event_id])
        event = found.get(event_id)
        if event is None or event.rejected:
            raise errors.not_found("Event not found")
        return event

    async def _state_and_auth_chain(
        self, origin: str, room_id: str, event_id: str
    ) -> tuple[list[str], list[str]]:
        """The IDs of the state before ``event_id`` and of its events' auth chain."""
        room = await self._room_for(origin, room_id)
        if self._partial_state is not None and await self._partial_state(room_id):
            # Our member list is incomplete: the asker would take it as the room's.
            raise errors.not_found("This server does not hold the room's full state yet")
        event = await self._stored_event(event_id)
        state = (
            None if event.room_id != room_id else await self._graph.get_state_ids_before(event_id)
        )
        if state is None:
            # An outlier has no state here to tell.
            raise errors.not_found("No state known at this event")
        state_ids = list(state.values())
        return state_ids, await self._auth_chain(room, state_ids)

    async def _auth_chain(self, room: RoomRecord, event_ids: Collection[str]) -> list[str]:
        """The auth chain of ``event_ids``; in v12 rooms it holds the create event,
        which events there do not cite (its ID is the room ID's hash) but every
        event is authorised by.  spec: rooms/v12.md"""
        try:
            chain = await self._graph.get_auth_chain_ids(event_ids)
        except AuthChainTooLarge:
            raise errors.MatrixError(
                413, errors.Codes.TOO_LARGE, "The auth chain is too large to serve"
            ) from None
        room_version = KNOWN_ROOM_VERSIONS.get(room.room_version)
        if room_version is not None and room_version.hydra:
            create_id = "$" + room.room_id[1:]
            if any(event_id != create_id for event_id in event_ids):
                chain.add(create_id)
        return sorted(chain)

    # --- history visibility ------------------------------------------------------

    async def _as_seen_by(
        self, origin: str, room: RoomRecord, events: Sequence[Event]
    ) -> list[Event]:
        """``events`` in order, those ``origin`` may not see redacted, and those of
        senders erased at deactivation too (as Synapse serves them to servers)."""
        erased: frozenset[str] = frozenset()
        if self._erased is not None and events:
            erased = await self._erased.erased_among({e.sender for e in events})
        return [
            e if e.sender not in erased and await self._visible(origin, e) else prune_event(e)
            for e in events
        ]

    async def _visible(self, origin: str, event: Event) -> bool:
        """Whether ``origin`` may see ``event``, judged on the state after it, as
        Synapse does: a server's own join (or invite) is served whole, and a change
        of ``m.room.history_visibility`` by its new value."""
        group = event.internal.state_group_before
        if group is None:
            # No state known before it (an outlier, or the create event): nothing
            # restricts it, and its content is what the graph needs anyway.
            return True
        visibility = await self._visibility_after(event, group)
        if visibility not in ("invited", "joined"):
            return True
        # The servers joined after the event: one cached read per state group.
        joined = await self._graph.get_servers_at(event.event_id)
        if joined is not None:
            if origin in joined:
                return True
            if visibility == "joined":
                return False
        # An invite of one of origin's users (or a graph without the servers): its
        # members in the state after the event.
        state_ids = dict(await self._state.get_state_ids(group))
        if _is_accepted_state(event) and event.type == "m.room.member":
            state_ids[event.state_key_tuple] = event.event_id
        suffix = ":" + origin
        member_ids = [
            event_id
            for (event_type, state_key), event_id in state_ids.items()
            if event_type == "m.room.member" and state_key.endswith(suffix)
        ]
        members = await self._events.get_events(member_ids)
        if event.event_id in member_ids:
            members = {**members, event.event_id: event}
        for member in members.values():
            if member.membership == "join":
                return True
            if member.membership == "invite" and visibility == "invited":
                return True
        return False

    async def _visibility_after(self, event: Event, group: int) -> str:
        if _is_accepted_state(event) and event.state_key_tuple == _HISTORY_VISIBILITY:
            value = event.content.get("history_visibility")
            return value if isinstance(value, str) else "shared"
        found = await self._state.get_state_for_keys(group, [_HISTORY_VISIBILITY])
        if _HISTORY_VISIBILITY in found:
            loaded = await self._events.get_events([found[_HISTORY_VISIBILITY]])
            event_of = loaded.get(found[_HISTORY_VISIBILITY])
            if event_of is not None:
                value = event_of.content.get("history_visibility")
                return value if isinstance(value, str) else "shared"
        return "shared"


def _is_accepted_state(event: Event) -> bool:
    """Whether ``event`` is part of the state after itself."""
    return event.is_state() and not event.rejected
