"""Fetching the full state of rooms joined with partial state, in the background.

After a join whose answer left membership events out (``members_omitted``), the
state before our join is asked of the server we joined through, then of the other
servers that were in the room (``servers_in_room``), through the same source the
event path fetches gaps from (``/state_ids`` at our join, then ``/state`` or the
events one by one, every PDU checked), and handed to
``homeserver.rooms.partial_state`` to complete the room.  A round that gets nothing
from any server is tried again after a growing pause; rooms still partial at start-up
(a restart in the middle) are resumed.

spec: data/api/server-server/joins-v2.yaml (omit_members),
server-server-api.md#get_matrixfederationv1state_idsroomid
"""

from __future__ import annotations

import enum
import logging
from typing import Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from homeserver.rooms.partial_state import StaleJoinError
from homeserver.rooms.remote_events import EventsUnavailable, InvalidRemoteState, RemoteState
from homeserver.storage.partial_state import PartialStateRoom

logger = logging.getLogger(__name__)

#: Pause after a round in which no server gave a usable state, doubling up to the most.
FIRST_RETRY_S = 5.0
MAX_RETRY_S = 60.0


class _Attempt(enum.Enum):
    DONE = enum.auto()  # completed
    STALE = enum.auto()  # the record changed: not this join's to complete
    FAILED = enum.auto()  # try another server


class StateBeforeSource(Protocol):
    """``federation.inbound.missing_events.FederationMissingEventSource``."""

    async def fetch_state_before(
        self, room_id: str, event_id: str, *, origin: str | None = None
    ) -> RemoteState: ...


class RoomCompleter(Protocol):
    """``homeserver.rooms.partial_state.PartialStateCompleter``."""

    async def complete(self, room: PartialStateRoom, full: RemoteState) -> list[str]: ...


class PartialRooms(Protocol):
    """``homeserver.storage.partial_state.PartialStateStore``."""

    async def all_rooms(self) -> list[PartialStateRoom]: ...

    async def get(self, room_id: str) -> PartialStateRoom | None: ...


class PartialStateResync:
    def __init__(
        self,
        *,
        server_name: str,
        source: StateBeforeSource,
        completer: RoomCompleter,
        rooms: PartialRooms,
        reactor: IReactorTime,
    ) -> None:
        self._server_name = server_name
        self._source = source
        self._completer = completer
        self._rooms = rooms
        self._reactor = reactor
        #: Per process: the room fetches running here (the room writer's process).
        self._running: dict[str, defer.Deferred[None]] = {}
        self._stopped = False

    def start(self, room: PartialStateRoom) -> None:
        """Fetch ``room``'s full state in the background (once per room)."""
        if self._stopped or room.room_id in self._running:
            return
        running = defer.ensureDeferred(self._resync(room))
        self._running[room.room_id] = running

        def finished(outcome: object) -> None:
            self._running.pop(room.room_id, None)
            if isinstance(outcome, Failure) and not outcome.check(defer.CancelledError):
                logger.error(
                    "fetching the full state of %s failed: %s",
                    room.room_id,
                    outcome.getErrorMessage(),
                )

        running.addBoth(finished)

    async def resume_all(self) -> None:
        """Start every fetch a restart interrupted."""
        for room in await self._rooms.all_rooms():
            self.start(room)

    async def stop(self) -> None:
        self._stopped = True
        for running in list(self._running.values()):
            running.cancel()

    async def _resync(self, room: PartialStateRoom) -> None:
        pause = FIRST_RETRY_S
        while True:
            current = await self._rooms.get(room.room_id)
            if current is None:
                return  # completed, or we left
            # A newer join of the room (we left and joined again): fetch as of it.
            room = current
            outcome = _Attempt.FAILED
            for server in self._servers(room):
                outcome = await self._try(room, server)
                if outcome is not _Attempt.FAILED:
                    break
            if outcome is _Attempt.DONE:
                return
            if outcome is _Attempt.STALE:
                continue  # read the record again: a newer join, or none
            logger.info(
                "no server gave the full state of %s; trying again in %.0f s", room.room_id, pause
            )
            await deferLater(self._reactor, pause)
            pause = min(pause * 2, MAX_RETRY_S)

    def _servers(self, room: PartialStateRoom) -> list[str]:
        others = sorted(room.servers_in_room - {room.joined_via, self._server_name})
        return [room.joined_via, *others]

    async def _try(self, room: PartialStateRoom, server: str) -> _Attempt:
        try:
            full = await self._source.fetch_state_before(
                room.room_id, room.join_event_id, origin=server
            )
            await self._completer.complete(room, full)
            return _Attempt.DONE
        except StaleJoinError:
            return _Attempt.STALE
        except (EventsUnavailable, InvalidRemoteState) as failed:
            logger.info("full state of %s from %s: %s", room.room_id, server, failed)
        except defer.CancelledError:
            raise
        except Exception:
            logger.exception("full state of %s from %s failed", room.room_id, server)
        return _Attempt.FAILED
