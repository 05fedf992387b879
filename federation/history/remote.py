"""Fetching history this server lacks from the other servers in a room.

:class:`FederationHistory` implements ``homeserver.rooms.reading.RemoteHistory``:

- **backfill** — when a client's ``/messages`` reads a page where history is
  missing here (a gap left while this server was away, held as a backward extremity
  at a depth within the page) or reaches the start of the history held here, the
  room's backward extremities there (the prev events its events cite and this
  server does not hold in the graph) are asked of the servers in the room,
  ``GET /backfill``, one server after another until one gives something new; the
  events are checked like any received PDU and stored through
  ``EventPath.receive_backfill``.  One backfill per room at a time (concurrent
  callers share it); a caller waits at most :data:`BACKFILL_WAIT_SECONDS` and is then
  answered with what is held, while the backfill goes on for the next page.  When
  every server was asked and none had anything new for the same extremities, the
  room is left alone for :data:`FRUITLESS_RETRY_MS`.  A room whose history reaches
  its create event has no backward extremity left: nothing is asked for it again.
- **timestamps** — when the event nearest a time here may not be the nearest there
  is (none found, or the room's history here has gaps), ``GET /timestamp_to_event``
  is asked of the servers in the room; a nearer event is fetched (``GET /event``),
  checked and stored as history, as the spec advises.

Remote servers are not trusted: every PDU is checked (format, signatures, hashes),
must belong to the room, and what a server claims of an event (its timestamp) is
checked against the event itself.  Requests, servers asked and sizes are bounded.

spec: server-server-api.md#backfilling-and-retrieving-missing-events,
#get_matrixfederationv1timestamp_to_eventroomid, data/api/server-server/backfill.yaml
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol
from urllib.parse import quote

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from federation.inbound.pdu_checks import InvalidPdu, PduChecker
from federation.protocols import FederationGetter, JoinedServers
from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.rooms.event_path import UnknownRoomError
from homeserver.rooms.event_path_types import PathResult
from homeserver.rooms.reading import Backfill
from homeserver.storage.events import RoomRecord
from homeserver.storage.timeline import Direction
from homeserver.util.caches import LruCache

logger = logging.getLogger(__name__)

#: Events one ``/backfill`` asks for (Synapse's cap on what it serves).
BACKFILL_LIMIT = 100
#: Backward extremities one ``/backfill`` starts from.
MAX_EXTREMITIES_ASKED = 20
#: Backward extremities of a room looked at for one page (a room with more gaps
#: than this is filled in over several pages).
MAX_EXTREMITIES_CONSIDERED = 500
#: Servers asked in turn for one backfill or one timestamp.
MAX_SERVERS_ASKED = 5
#: Seconds one request to another server may take.
REQUEST_TIMEOUT = 20.0
#: Seconds a ``/timestamp_to_event`` request may take (the client is waiting).
TIMESTAMP_REQUEST_TIMEOUT = 5.0
#: Seconds a client's ``/messages`` waits for a backfill before it is answered with
#: what is held (the backfill goes on; the next page finds what it stored).
BACKFILL_WAIT_SECONDS = 8.0
#: How long a room whose servers had nothing new is not asked again for the same
#: backward extremities (milliseconds).
FRUITLESS_RETRY_MS = 5 * 60 * 1000
#: Fruitless backfills remembered (the least recently marked go first).
MAX_FRUITLESS_ROOMS = 10_000
#: A PDU is at most 64 KiB; an answer holds the limit's worth and its envelope.
MAX_PDU_BYTES = 64 * 1024
MAX_BACKFILL_RESPONSE_BYTES = (BACKFILL_LIMIT + 1) * 2 * MAX_PDU_BYTES
MAX_SMALL_RESPONSE_BYTES = 4 * MAX_PDU_BYTES


class HistoryPath(Protocol):
    """``EventPath.receive_backfill``: where fetched history is stored."""

    async def receive_backfill(
        self, room_id: str, events: Sequence[Event], *, origin: str | None = None
    ) -> list[PathResult]: ...


class RoomGraph(Protocol):
    """What this server holds of a room (``EventStore``)."""

    async def get_backward_extremities(
        self, room_nid: int, among: Collection[str] | None = None
    ) -> set[str]: ...

    async def get_events(self, event_ids: Sequence[str]) -> Mapping[str, Event]: ...


class FederationHistory:
    def __init__(
        self,
        *,
        server_name: str,
        client: FederationGetter,
        checker: PduChecker,
        path: HistoryPath,
        graph: RoomGraph,
        servers: JoinedServers,
        reactor: IReactorTime,
    ) -> None:
        self._server_name = server_name
        self._client = client
        self._checker = checker
        self._path = path
        self._graph = graph
        self._servers = servers
        self._reactor = reactor
        self._clock = Clock(reactor)
        #: Room ID -> the backfill running for it.
        self._running: dict[str, defer.Deferred[Backfill]] = {}
        #: (room ID, backward extremities every server was asked about in vain) ->
        #: when they may be asked about again.
        self._fruitless: LruCache[tuple[str, frozenset[str]], int] = LruCache(MAX_FRUITLESS_ROOMS)

    # --- backfill ------------------------------------------------------------------

    async def backfill(self, room: RoomRecord, *, down_to_depth: int | None = None) -> Backfill:
        """spec: GET /_matrix/federation/v1/backfill/{roomId}"""
        running = self._running.get(room.room_id)
        if running is None:
            gaps = await self._gaps_to_fill(room, down_to_depth)
            if not gaps:
                return Backfill.NOTHING
            running = defer.ensureDeferred(self._backfill_logged(room, gaps))
            self._running[room.room_id] = running
            running.addBoth(self._finished, room.room_id, running)
        return await self._wait_at_most(running, BACKFILL_WAIT_SECONDS)

    def _finished(self, outcome: object, room_id: str, running: defer.Deferred[Backfill]) -> object:
        if self._running.get(room_id) is running:
            del self._running[room_id]
        return outcome

    def _wait_at_most(
        self, running: defer.Deferred[Backfill], seconds: float
    ) -> defer.Deferred[Backfill]:
        """``running``'s result, or PENDING after ``seconds``; ``running`` goes on."""
        seen: defer.Deferred[Backfill] = defer.Deferred()
        timer = self._reactor.callLater(seconds, seen.callback, Backfill.PENDING)

        def done(outcome: object) -> object:
            if timer.active():
                timer.cancel()
                seen.callback(outcome if isinstance(outcome, Backfill) else Backfill.NOTHING)
            return outcome

        running.addBoth(done)
        return seen

    async def _gaps_to_fill(self, room: RoomRecord, down_to_depth: int | None) -> frozenset[str]:
        """The room's backward extremities worth asking about now: those at or above
        ``down_to_depth`` (any, if None), unless every server was asked about just
        these lately.  An extremity this server does not hold at all (what a join
        cites) is at the bottom of the history held: it counts only without a depth."""
        extremities = await self._graph.get_backward_extremities(room.room_nid)
        if extremities and down_to_depth is not None:
            held = await self._graph.get_events(sorted(extremities)[:MAX_EXTREMITIES_CONSIDERED])
            extremities = {
                event_id
                for event_id, event in held.items()
                if event_id in extremities and event.depth >= down_to_depth
            }
        gaps = frozenset(sorted(extremities)[:MAX_EXTREMITIES_ASKED])
        retry_at = self._fruitless.get((room.room_id, gaps))
        if not gaps or (retry_at is not None and self._clock.time_msec() < retry_at):
            return frozenset()
        return gaps

    async def _backfill_logged(self, room: RoomRecord, gaps: frozenset[str]) -> Backfill:
        try:
            return Backfill.STORED if await self._backfill(room, gaps) else Backfill.NOTHING
        except defer.CancelledError:
            raise
        except UnknownRoomError:
            # Left meanwhile, or only invited: no history of it is ours to build.
            return Backfill.NOTHING
        except Exception:
            # A reader's page must not fail for history it could not have.
            logger.exception("backfilling %s failed", room.room_id)
            return Backfill.NOTHING

    async def _backfill(self, room: RoomRecord, gaps: frozenset[str]) -> bool:
        room_version = KNOWN_ROOM_VERSIONS.get(room.room_version)
        if room_version is None:
            return False
        from_ids = sorted(gaps)
        for server in await self._servers_of(room):
            events = await self._backfill_from(server, room.room_id, room_version, from_ids)
            if not events:
                continue
            results = await self._path.receive_backfill(room.room_id, events, origin=server)
            stored = sum(1 for r in results if r.stored and not r.duplicate)
            logger.info(
                "backfilled %d of %d events of %s from %s",
                stored,
                len(events),
                room.room_id,
                server,
            )
            if stored:
                return True
        self._fruitless.set((room.room_id, gaps), self._clock.time_msec() + FRUITLESS_RETRY_MS)
        return False

    async def _backfill_from(
        self, server: str, room_id: str, room_version: RoomVersion, from_ids: Sequence[str]
    ) -> list[Event]:
        """The checked events of ``server``'s ``/backfill`` answer (none on failure)."""
        try:
            answer = await self._client.get_json(
                server,
                f"/_matrix/federation/v1/backfill/{quote(room_id, safe='')}",
                args={"v": list(from_ids), "limit": str(BACKFILL_LIMIT)},
                timeout=REQUEST_TIMEOUT,
                max_size=MAX_BACKFILL_RESPONSE_BYTES,
            )
        except defer.CancelledError:
            raise
        except Exception as exc:
            logger.info("backfill of %s from %s failed: %s", room_id, server, exc)
            return []
        pdus = answer.get("pdus") if isinstance(answer, dict) else None
        if not isinstance(pdus, list):
            logger.info("backfill answer of %s has no 'pdus' list", server)
            return []
        events: dict[str, Event] = {}
        for pdu in pdus[:BACKFILL_LIMIT]:
            event = await self._check(server, room_id, room_version, pdu)
            if event is not None:
                events.setdefault(event.event_id, event)
        return list(events.values())

    # --- timestamps ----------------------------------------------------------------

    async def event_near_timestamp(
        self, room: RoomRecord, ts: int, direction: Direction, local: Event | None
    ) -> Event | None:
        """spec: GET /_matrix/federation/v1/timestamp_to_event/{roomId}"""
        if local is not None and (
            local.origin_server_ts == ts
            or not await self._graph.get_backward_extremities(room.room_nid)
        ):
            # Exact, or the history here is whole from the room's creation on.
            return None
        room_version = KNOWN_ROOM_VERSIONS.get(room.room_version)
        if room_version is None:
            return None
        for server in (await self._servers_of(room))[:3]:
            claimed = await self._timestamp_from(server, room.room_id, ts, direction)
            if claimed is None:
                continue
            event_id, claimed_ts = claimed
            if not _nearer(claimed_ts, ts, direction, local):
                # The servers agree on the room's history: another would say the same.
                return None
            try:
                return await self._held_or_fetched(
                    server,
                    room,
                    room_version,
                    event_id,
                    lambda found_ts: _nearer(found_ts, ts, direction, local),
                )
            except defer.CancelledError:
                raise
            except Exception:
                logger.exception("storing %s (near a timestamp) from %s failed", event_id, server)
        return None

    async def _timestamp_from(
        self, server: str, room_id: str, ts: int, direction: Direction
    ) -> tuple[str, int] | None:
        try:
            answer = await self._client.get_json(
                server,
                f"/_matrix/federation/v1/timestamp_to_event/{quote(room_id, safe='')}",
                args={"ts": str(ts), "dir": direction},
                timeout=TIMESTAMP_REQUEST_TIMEOUT,
                max_size=MAX_SMALL_RESPONSE_BYTES,
            )
        except defer.CancelledError:
            raise
        except Exception as exc:
            logger.info("timestamp_to_event in %s from %s failed: %s", room_id, server, exc)
            return None
        event_id = answer.get("event_id") if isinstance(answer, dict) else None
        claimed_ts = answer.get("origin_server_ts") if isinstance(answer, dict) else None
        if not isinstance(event_id, str) or type(claimed_ts) is not int:
            logger.info("timestamp_to_event answer of %s is malformed", server)
            return None
        return event_id, claimed_ts

    async def _held_or_fetched(
        self,
        server: str,
        room: RoomRecord,
        room_version: RoomVersion,
        event_id: str,
        wanted: Callable[[int], bool],
    ) -> Event | None:
        """``event_id`` in the room's graph here: as held, or fetched from ``server``
        and stored as history.  None when it cannot be had, or when its timestamp is
        not ``wanted`` (the server's claim about it is checked against the event)."""
        held = (await self._graph.get_events([event_id])).get(event_id)
        if held is not None and held.room_id == room.room_id and not held.internal.outlier:
            return held if wanted(held.origin_server_ts) else None
        try:
            answer = await self._client.get_json(
                server,
                f"/_matrix/federation/v1/event/{quote(event_id, safe='')}",
                timeout=TIMESTAMP_REQUEST_TIMEOUT,
                max_size=MAX_SMALL_RESPONSE_BYTES,
            )
        except defer.CancelledError:
            raise
        except Exception as exc:
            logger.info("fetching %s from %s failed: %s", event_id, server, exc)
            return None
        pdus = answer.get("pdus") if isinstance(answer, dict) else None
        if not isinstance(pdus, list) or len(pdus) != 1:
            return None
        event = await self._check(server, room.room_id, room_version, pdus[0])
        if event is None or event.event_id != event_id:
            logger.info("%s answered /event/%s with another event", server, event_id)
            return None
        if not wanted(event.origin_server_ts):
            logger.info("%s misreported the timestamp of %s", server, event_id)
            return None
        results = await self._path.receive_backfill(room.room_id, [event], origin=server)
        if not any(r.event_id == event_id and r.visible for r in results):
            return None
        # Read back: the stored event carries its place in the graph.
        return (await self._graph.get_events([event_id])).get(event_id)

    # --- helpers -------------------------------------------------------------------

    async def _check(
        self, server: str, room_id: str, room_version: RoomVersion, pdu: object
    ) -> Event | None:
        if not isinstance(pdu, dict):
            return None
        try:
            event = await self._checker.check(room_version, pdu, origin=server)
        except InvalidPdu as exc:
            logger.info("dropping a PDU of %s's history from %s: %s", room_id, server, exc.reason)
            return None
        except defer.CancelledError:
            raise
        except Exception:
            # Not the PDU's fault (its sender's keys could not be had): unusable now.
            logger.exception("checking a PDU of %s's history from %s failed", room_id, server)
            return None
        if event.room_id != room_id:
            logger.info("%s gave %s of another room as history", server, event.event_id)
            return None
        return event

    async def _servers_of(self, room: RoomRecord) -> list[str]:
        """Who to ask, in order: the server whose name the room ID carries (its
        creator's, in room versions before 12: in the room the longest, most likely
        to hold its history), then the others joined to it."""
        joined = sorted(
            s
            for s in await self._servers.get_joined_servers(room.room_id)
            if s != self._server_name
        )
        creator = room.room_id.partition(":")[2]
        if creator in joined:
            joined.remove(creator)
            joined.insert(0, creator)
        return joined[:MAX_SERVERS_ASKED]


def _nearer(claimed_ts: int, ts: int, direction: Direction, local: Event | None) -> bool:
    """Whether an event at ``claimed_ts`` is on the asked side of ``ts`` and nearer
    to it than ``local``."""
    if (direction == "f" and claimed_ts < ts) or (direction == "b" and claimed_ts > ts):
        return False
    return local is None or abs(claimed_ts - ts) < abs(local.origin_server_ts - ts)
