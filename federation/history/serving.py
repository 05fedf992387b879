"""Serving room history to other servers: ``/backfill`` and ``/timestamp_to_event``.

Who may read is decided as for the other graph reads, whose access checks this
extends (``inbound/event_reads.py``): a server with a member joined to the room now,
admitted by the room's server ACL.  Events it could not see under the room's
history visibility are served redacted by ``/backfill`` (the graph stays whole for
it) and passed over by ``/timestamp_to_event`` (which must name an event the asker
may read).

spec: server-server-api.md#backfilling-and-retrieving-missing-events
(data/api/server-server/backfill.yaml),
#get_matrixfederationv1timestamp_to_eventroomid (events.yaml)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from federation.inbound.event_reads import AclCheck, EventGraphReads, EventReadHandler
from homeserver import errors
from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.storage.erased_users import ErasedUserStore
from homeserver.storage.event_graph import StoredPdu
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import Direction

#: Events one ``/backfill`` answers at most, whatever ``limit`` asks (Synapse's cap).
MAX_BACKFILL = 100
#: Event IDs one ``/backfill`` may start from.
MAX_BACKFILL_FROM = 50
#: Events ``/timestamp_to_event`` passes over (invisible to the asker) before it
#: answers that there is none: the walk is bounded whatever the room holds.
MAX_TIMESTAMP_SKIPS = 100


class BackfillGraph(EventGraphReads, Protocol):
    """``EventGraphStore``'s reads, with history before some events."""

    async def get_backfill(
        self, room_id: str, from_event_ids: Collection[str], limit: int
    ) -> Sequence[StoredPdu]: ...


class TimestampIndex(Protocol):
    """``TimelineStore``'s timestamp lookup."""

    async def get_event_near_timestamp(
        self, room_nid: int, ts: int, direction: Direction
    ) -> Event | None: ...


class HistoryReadHandler(EventReadHandler):
    def __init__(
        self,
        *,
        server_name: str,
        events: EventStore,
        state: StateStore,
        graph: BackfillGraph,
        timeline: TimestampIndex,
        acl: AclCheck,
        clock: Clock,
        erased: ErasedUserStore | None = None,
    ) -> None:
        super().__init__(
            server_name=server_name,
            events=events,
            state=state,
            graph=graph,
            acl=acl,
            clock=clock,
            erased=erased,
        )
        self._history_graph = graph
        self._timeline = timeline

    async def backfill(
        self, origin: str, room_id: str, event_ids: Sequence[str], limit: int
    ) -> dict[str, Any]:
        """The events up to ``event_ids`` (included) and before them, newest first,
        at most ``limit`` (capped at :data:`MAX_BACKFILL`).
        spec: GET /_matrix/federation/v1/backfill/{roomId}"""
        room = await self._room_for(origin, room_id)
        if not event_ids:
            raise errors.missing_param("v")
        if len(event_ids) > MAX_BACKFILL_FROM:
            raise errors.invalid_param(f"'v' names at most {MAX_BACKFILL_FROM} events")
        found = await self._history_graph.get_backfill(
            room_id, list(dict.fromkeys(event_ids)), max(0, min(limit, MAX_BACKFILL))
        )
        loaded = await self._events.get_events([pdu.event_id for pdu in found])
        events = [loaded[pdu.event_id] for pdu in found if pdu.event_id in loaded]
        shown = await self._as_seen_by(origin, room, events)
        return {
            "origin": self._server_name,
            "origin_server_ts": self._clock.time_msec(),
            "pdus": [event.pdu for event in shown],
        }

    async def timestamp_to_event(
        self, origin: str, room_id: str, ts: int, direction: Direction
    ) -> dict[str, Any]:
        """The event nearest ``ts`` in ``direction`` that ``origin`` may see; 404
        ``M_NOT_FOUND`` if there is none.
        spec: GET /_matrix/federation/v1/timestamp_to_event/{roomId}"""
        room = await self._room_for(origin, room_id)
        event = await self._timeline.get_event_near_timestamp(room.room_nid, ts, direction)
        step = -1 if direction == "b" else 1
        for _skip in range(MAX_TIMESTAMP_SKIPS):
            if event is None:
                break
            if await self._visible(origin, event):
                return {"event_id": event.event_id, "origin_server_ts": event.origin_server_ts}
            event = await self._timeline.get_event_near_timestamp(
                room.room_nid, event.origin_server_ts + step, direction
            )
        raise errors.not_found("No event found near that time")
