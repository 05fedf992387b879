"""Fetching events the event path lacks from other servers in the room.

:class:`FederationMissingEventSource` implements the event path's
``MissingEventSource`` (``homeserver/rooms/remote_events.py``) over the federation
read endpoints: ``GET /event/{eventId}``, ``POST /get_missing_events/{roomId}``,
``GET /state_ids/{roomId}`` (and ``GET /state/{roomId}`` when most of a state is
unknown here).  The server that sent the events being processed (``origin``) is
asked first, then a few other servers with members in the room.

Every PDU obtained is checked like a received one (format, signatures, hashes:
:class:`~federation.inbound.pdu_checks.PduChecker`) and must be the event asked for,
in the room asked about: another server's answer is never trusted for more than
its signatures prove.  Counts are bounded (events per call, servers asked, requests
in flight) so a hostile or broken server cannot make us fetch without end.

spec: server-server-api.md#retrieving-events,
server-server-api.md#backfilling-and-retrieving-missing-events,
data/api/server-server/events.yaml
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from federation.client.errors import FederationUnreachable
from federation.inbound.pdu_checks import InvalidPdu, PduChecker
from federation.protocols import FederationReader, JoinedServers
from federation.yielding import default_reactor, yield_to_reactor
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.rooms.remote_events import EventsUnavailable, RemoteState
from homeserver.storage.events import RoomRecord

logger = logging.getLogger(__name__)

#: Servers asked for one thing, ``origin`` included.
MAX_SERVERS_ASKED = 5
#: Events fetched one by one in one call at most; more are reported unavailable.
MAX_EVENTS_PER_CALL = 500
#: Events one ``/get_missing_events`` asks for at most.
MAX_MISSING_EVENTS_ASKED = 100
#: ``/event`` requests in flight at once for one call.
CONCURRENT_FETCHES = 10
#: More missing state events than this and the whole ``/state`` is asked for instead
#: of each event by ``/event``.
MAX_INDIVIDUAL_STATE_FETCHES = 50
#: IDs a ``/state_ids`` answer may list (state plus auth chain) before it is refused.
MAX_STATE_IDS = 200_000
#: An ``/event`` answer holds one PDU (64 KiB at most) and a few fields.
MAX_EVENT_RESPONSE_BYTES = 256 * 1024
#: Bytes of a ``/state_ids`` answer (event IDs are ~50 bytes: some 80,000 of them).
MAX_STATE_IDS_RESPONSE_BYTES = 4 * 1024 * 1024
#: Bytes of a ``/state`` answer: the PDUs of a large room's state and auth chain.
MAX_STATE_RESPONSE_BYTES = 32 * 1024 * 1024
#: PDUs checked between two yields to the reactor: with keys cached a check completes
#: without waiting, so a long list would otherwise hold the reactor for seconds.
CHECKS_BETWEEN_YIELDS = 50
#: State fetches (``/state_ids`` and what follows) running at once for the events of
#: one origin: each may cost thousands of checks, and one server's transactions must
#: not starve the others'.
MAX_STATE_FETCHES_PER_ORIGIN = 2
#: Seconds one request may take.
REQUEST_TIMEOUT = 60.0


RoomServers = JoinedServers


class LocalEvents(Protocol):
    """The events this server holds, and its rooms (``EventStore``)."""

    async def get_room(self, room_id: str) -> RoomRecord | None: ...

    async def get_events(self, event_ids: Sequence[str]) -> Mapping[str, Event]: ...


class FederationMissingEventSource:
    def __init__(
        self,
        *,
        server_name: str,
        client: FederationReader,
        checker: PduChecker,
        rooms: RoomServers,
        events: LocalEvents,
        reactor: IReactorTime | None = None,
    ) -> None:
        self._server_name = server_name
        self._client = client
        self._checker = checker
        self._rooms = rooms
        self._events = events
        self._reactor = default_reactor() if reactor is None else reactor
        #: origin -> the limiter of its state fetches (dropped when idle).
        self._state_fetches: dict[str, defer.DeferredSemaphore] = {}

    # --- MissingEventSource ------------------------------------------------------

    async def fetch_events(
        self, room_id: str, event_ids: Collection[str], *, origin: str | None = None
    ) -> Sequence[Event]:
        """spec: GET /_matrix/federation/v1/event/{eventId}"""
        room_version = await self._room_version(room_id, event_ids)
        servers = await self._servers(room_id, origin)
        wanted = list(dict.fromkeys(event_ids))[:MAX_EVENTS_PER_CALL]
        found = await self._fetch_each(room_id, room_version, wanted, servers)
        if not found:
            raise EventsUnavailable(event_ids)
        return list(found.values())

    async def fetch_missing_events(
        self,
        room_id: str,
        *,
        earliest: Sequence[str],
        latest: Sequence[str],
        limit: int,
        min_depth: int,
        origin: str | None = None,
    ) -> Sequence[Event]:
        """spec: POST /_matrix/federation/v1/get_missing_events/{roomId}"""
        limit = max(0, min(limit, MAX_MISSING_EVENTS_ASKED))
        room = await self._events.get_room(room_id)
        room_version = KNOWN_ROOM_VERSIONS.get(room.room_version) if room else None
        if room_version is None:
            return []
        body = {
            "earliest_events": list(earliest),
            "latest_events": list(latest),
            "limit": limit,
            "min_depth": min_depth,
        }
        path = f"/_matrix/federation/v1/get_missing_events/{quote(room_id, safe='')}"
        for server in await self._servers(room_id, origin):
            try:
                answer = await self._client.post_json(
                    server,
                    path,
                    body,
                    timeout=REQUEST_TIMEOUT,
                    # ``limit`` PDUs of at most 64 KiB each, with room to spare.
                    max_size=(max(limit, 1) + 1) * MAX_EVENT_RESPONSE_BYTES,
                )
            except defer.CancelledError:
                raise
            except Exception as exc:
                logger.info("get_missing_events in %s from %s failed: %s", room_id, server, exc)
                continue
            pdus = answer.get("events") if isinstance(answer, dict) else None
            if not isinstance(pdus, list):
                logger.info("get_missing_events answer of %s has no 'events' list", server)
                continue
            events = await self._check_all(room_id, room_version, pdus[:limit], server)
            return list(events.values())
        return []

    async def fetch_state_before(
        self, room_id: str, event_id: str, *, origin: str | None = None
    ) -> RemoteState:
        """spec: GET /_matrix/federation/v1/state_ids/{roomId}, and /state/{roomId}"""
        key = origin or ""
        limiter = self._state_fetches.get(key)
        if limiter is None:
            limiter = self._state_fetches[key] = defer.DeferredSemaphore(
                MAX_STATE_FETCHES_PER_ORIGIN
            )
        await limiter.acquire()
        try:
            return await self._state_before(room_id, event_id, origin)
        finally:
            limiter.release()
            if limiter.tokens == limiter.limit and not limiter.waiting:
                del self._state_fetches[key]

    async def _state_before(self, room_id: str, event_id: str, origin: str | None) -> RemoteState:
        room_version = await self._room_version(room_id, [event_id])
        servers = await self._servers(room_id, origin)
        for server in servers:
            try:
                return await self._state_from(room_id, room_version, event_id, server, servers)
            except defer.CancelledError:
                raise
            except EventsUnavailable as exc:
                logger.info("state before %s from %s: %s", event_id, server, exc)
            except Exception as exc:
                logger.info("state before %s from %s failed: %s", event_id, server, exc)
        raise EventsUnavailable([event_id])

    # --- state ---------------------------------------------------------------------

    async def _state_from(
        self,
        room_id: str,
        room_version: RoomVersion,
        event_id: str,
        server: str,
        servers: Sequence[str],
    ) -> RemoteState:
        room_path = quote(room_id, safe="")
        answer = await self._client.get_json(
            server,
            f"/_matrix/federation/v1/state_ids/{room_path}",
            args={"event_id": event_id},
            timeout=REQUEST_TIMEOUT,
            max_size=MAX_STATE_IDS_RESPONSE_BYTES,
        )
        state_ids = _id_list(answer, "pdu_ids")
        auth_ids = _id_list(answer, "auth_chain_ids")
        if len(state_ids) + len(auth_ids) > MAX_STATE_IDS:
            raise EventsUnavailable([event_id])
        wanted = list(dict.fromkeys([*state_ids, *auth_ids]))
        have = dict(await self._events.get_events(wanted))
        lacking = [e for e in wanted if e not in have]
        if len(lacking) > MAX_INDIVIDUAL_STATE_FETCHES:
            have.update(await self._whole_state(room_id, room_version, event_id, server))
            lacking = [e for e in wanted if e not in have]
        if lacking:
            # The server that named them first, then the others.
            others = [server, *(s for s in servers if s != server)]
            have.update(await self._fetch_each(room_id, room_version, lacking, others))
        missing = [e for e in wanted if e not in have]
        if missing:
            raise EventsUnavailable(missing)
        return RemoteState(
            state=[have[e] for e in dict.fromkeys(state_ids)],
            auth_chain=[have[e] for e in dict.fromkeys(auth_ids)],
        )

    async def _whole_state(
        self, room_id: str, room_version: RoomVersion, event_id: str, server: str
    ) -> dict[str, Event]:
        """spec: GET /_matrix/federation/v1/state/{roomId} (state and auth chain PDUs)"""
        answer = await self._client.get_json(
            server,
            f"/_matrix/federation/v1/state/{quote(room_id, safe='')}",
            args={"event_id": event_id},
            timeout=REQUEST_TIMEOUT,
            max_size=MAX_STATE_RESPONSE_BYTES,
        )
        if not isinstance(answer, dict):
            return {}
        pdus = [*_pdu_list(answer, "pdus"), *_pdu_list(answer, "auth_chain")]
        if len(pdus) > MAX_STATE_IDS:
            return {}
        return await self._check_all(room_id, room_version, pdus, server)

    # --- events one by one -------------------------------------------------------------

    async def _fetch_each(
        self,
        room_id: str,
        room_version: RoomVersion,
        event_ids: Sequence[str],
        servers: Sequence[str],
    ) -> dict[str, Event]:
        """Each of ``event_ids`` from the first of ``servers`` that has it; a server
        that fails to answer at all is not asked again in this call."""
        found: dict[str, Event] = {}
        dead: set[str] = set()
        limiter = defer.DeferredSemaphore(CONCURRENT_FETCHES)

        async def one(event_id: str) -> None:
            for server in servers:
                if server in dead:
                    continue
                event = await self._event_from(room_id, room_version, event_id, server, dead)
                if event is not None:
                    found[event_id] = event
                    return

        await defer.gatherResults(
            [limiter.run(one, event_id) for event_id in event_ids],
            consumeErrors=True,
        )
        return found

    async def _event_from(
        self,
        room_id: str,
        room_version: RoomVersion,
        event_id: str,
        server: str,
        dead: set[str],
    ) -> Event | None:
        """``event_id`` from ``server`` (checked), or None."""
        try:
            answer = await self._client.get_json(
                server,
                f"/_matrix/federation/v1/event/{quote(event_id, safe='')}",
                timeout=REQUEST_TIMEOUT,
                max_size=MAX_EVENT_RESPONSE_BYTES,
            )
        except defer.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, FederationUnreachable):
                dead.add(server)
            logger.info("fetching %s from %s failed: %s", event_id, server, exc)
            return None
        pdus = _pdu_list(answer, "pdus") if isinstance(answer, dict) else []
        if len(pdus) != 1:
            logger.info("%s answered /event/%s without exactly one PDU", server, event_id)
            return None
        event = await self._check_one(room_id, room_version, pdus[0], server)
        if event is None or event.event_id != event_id:
            logger.info("%s answered /event/%s with another event", server, event_id)
            return None
        return event

    # --- helpers -------------------------------------------------------------------------

    async def _check_all(
        self, room_id: str, room_version: RoomVersion, pdus: Iterable[Any], server: str
    ) -> dict[str, Event]:
        checked: dict[str, Event] = {}
        for count, pdu in enumerate(pdus, 1):
            if count % CHECKS_BETWEEN_YIELDS == 0:
                await yield_to_reactor(self._reactor)
            event = await self._check_one(room_id, room_version, pdu, server)
            if event is not None:
                checked.setdefault(event.event_id, event)
        return checked

    async def _check_one(
        self, room_id: str, room_version: RoomVersion, pdu: Any, server: str
    ) -> Event | None:
        if not isinstance(pdu, dict):
            return None
        try:
            event = await self._checker.check(room_version, pdu, origin=server)
        except InvalidPdu as exc:
            logger.info("dropping a PDU fetched from %s: %s", server, exc.reason)
            return None
        except defer.CancelledError:
            raise
        except Exception:
            # Not the PDU's fault (e.g. its keys could not be fetched): not usable now.
            logger.exception("checking a PDU fetched from %s failed", server)
            return None
        if event.room_id != room_id:
            logger.info("%s gave %s of another room", server, event.event_id)
            return None
        return event

    async def _room_version(self, room_id: str, event_ids: Iterable[str]) -> RoomVersion:
        room = await self._events.get_room(room_id)
        room_version = KNOWN_ROOM_VERSIONS.get(room.room_version) if room else None
        if room_version is None:
            raise EventsUnavailable(event_ids)
        return room_version

    async def _servers(self, room_id: str, origin: str | None) -> list[str]:
        """Who to ask, in order: ``origin``, then other servers in the room."""
        servers = [origin] if origin is not None and origin != self._server_name else []
        joined = sorted(await self._rooms.get_joined_servers(room_id))
        servers.extend(s for s in joined if s != self._server_name and s not in servers)
        return servers[:MAX_SERVERS_ASKED]


def _id_list(answer: Any, key: str) -> list[str]:
    values = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise EventsUnavailable([])
    return values


def _pdu_list(answer: Mapping[str, Any], key: str) -> list[Any]:
    values = answer.get(key)
    return values if isinstance(values, list) else []
