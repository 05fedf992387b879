"""``PUT /_matrix/federation/v1/send/{txnId}``: the PDUs and EDUs another server pushes.

A transaction from an origin is processed once: its response is stored under
``(origin, txnId)`` and a retry gets that same response without anything being done
again.  One origin's transactions are processed one at a time, in arrival order (a
sender waits for our 200 before its next one, so this is its own order too); a retry
arriving while the first attempt is still processing waits for it and then finds
its stored response.

PDUs are grouped by room; rooms are processed concurrently.  In each room every PDU
passes the server ACL and steps 1-3 of the checks (:mod:`federation.inbound.
pdu_checks`), then the room's events go to the event path together (steps 4-6,
fetching what they cite).  Each PDU's result is ``{}`` or ``{"error": ...}``; a bad
PDU never fails the transaction.  EDUs go to their handlers alongside.

spec: server-server-api.md#transactions, #put_matrixfederationv1sendtxnid
(data/api/server-server/transactions.yaml), #server-access-control-lists-acls,
#checks-performed-on-receipt-of-a-pdu
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from twisted.internet import defer

from federation.inbound.edus import EduRegistry
from federation.inbound.pdu_checks import InvalidPdu, PduChecker
from federation.protocols import ServerAclFilter
from homeserver import errors
from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.events.hashing import compute_event_id
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.identifiers import is_valid_room_id
from homeserver.rooms.event_path import PathResult, UnknownRoomError
from homeserver.storage.events import RoomRecord
from homeserver.storage.federation_inbound import ReceivedTransactionStore
from homeserver.util.linearizer import Linearizer

logger = logging.getLogger(__name__)

#: spec: server-server-api.md#transactions ("at most 50 PDUs and 100 EDUs").
MAX_PDUS = 50
MAX_EDUS = 100
#: Longer transaction IDs are refused (a stored key; senders use short ones).
MAX_TRANSACTION_ID_LENGTH = 255
#: Rooms of one m.receipt EDU looked at (Synapse's sender puts a few in each).
MAX_RECEIPT_ROOMS = 100
#: How long a response is kept for retries.
RETENTION_MS = 86_400_000
#: Every this many transactions of this process, older responses are pruned.
_PRUNE_EVERY = 1000
#: Transactions of one origin waiting behind the one being processed.  A sender
#: sends one at a time, so more means retries piling up: refuse them (429).
MAX_QUEUED_PER_ORIGIN = 10


class RoomLookup(Protocol):
    """The room record, for the room version (``EventStore``)."""

    async def get_room(self, room_id: str) -> RoomRecord | None: ...


class EventReceiver(Protocol):
    """The event path (``homeserver.rooms.event_path.EventPath``)."""

    async def receive(
        self, room_id: str, events: Sequence[Event], *, origin: str | None = None
    ) -> list[PathResult]: ...


AclCheck = ServerAclFilter


class Residency(Protocol):
    """Whether one of our users is joined (``LocalResidencyStore``)."""

    async def has_local_member(self, room_nid: int) -> bool: ...


class TransactionHandler:
    def __init__(
        self,
        *,
        store: ReceivedTransactionStore,
        rooms: RoomLookup,
        residency: Residency,
        checker: PduChecker,
        acl: AclCheck,
        path: EventReceiver,
        edus: EduRegistry,
        clock: Clock,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._residency = residency
        self._checker = checker
        self._acl = acl
        self._path = path
        self._edus = edus
        self._clock = clock
        self._linearizer = Linearizer()
        self._queued: dict[str, int] = {}
        #: Transactions until the next pruning (the first one after start-up prunes).
        self._until_prune = 1

    async def on_transaction(
        self, origin: str, transaction_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Process (or recall) ``origin``'s transaction; the response body.

        Raises a 400 ``MatrixError`` for a body that is not a transaction, 429 when
        too many of ``origin``'s transactions are waiting.
        """
        if len(transaction_id) > MAX_TRANSACTION_ID_LENGTH:
            raise errors.invalid_param("Transaction ID is too long")
        pdus, edus = _parse_transaction(origin, body)
        queued = self._queued.get(origin, 0)
        if queued >= MAX_QUEUED_PER_ORIGIN:
            raise errors.limit_exceeded(1.0)
        self._queued[origin] = queued + 1
        try:
            async with self._linearizer.queue(origin):
                stored = await self._store.get_response(origin, transaction_id)
                if stored is not None:
                    response: dict[str, Any] = json.loads(stored)
                    return response
                response = await self._process(origin, pdus, edus)
                now = self._clock.time_msec()
                await self._store.store_response(origin, transaction_id, json.dumps(response), now)
        finally:
            remaining = self._queued[origin] - 1
            if remaining:
                self._queued[origin] = remaining
            else:
                del self._queued[origin]
        await self._maybe_prune(now)
        return response

    async def _process(
        self, origin: str, pdus: Sequence[Any], edus: Sequence[Any]
    ) -> dict[str, Any]:
        by_room: dict[str, list[Mapping[str, Any]]] = {}
        for pdu in pdus:
            room_id = pdu.get("room_id") if isinstance(pdu, Mapping) else None
            if not isinstance(room_id, str) or not is_valid_room_id(room_id):
                logger.info("ignoring a PDU without a valid room_id from %s", origin)
                continue
            by_room.setdefault(room_id, []).append(pdu)

        results: dict[str, dict[str, str]] = {}
        work = [
            defer.ensureDeferred(self._process_room(origin, room_id, room_pdus, results))
            for room_id, room_pdus in by_room.items()
        ]
        work.append(defer.ensureDeferred(self._process_edus(origin, edus)))
        await defer.gatherResults(work, consumeErrors=True)
        return {"pdus": results}

    async def _process_room(
        self,
        origin: str,
        room_id: str,
        pdus: Sequence[Mapping[str, Any]],
        results: dict[str, dict[str, str]],
    ) -> None:
        room = await self._rooms.get_room(room_id)
        room_version = KNOWN_ROOM_VERSIONS.get(room.room_version) if room is not None else None
        if room_version is None:
            _fail_all(results, pdus, None, "This server is not in the room")
            return
        assert room is not None
        if room.current_state_group is None or not await self._residency.has_local_member(
            room.room_nid
        ):
            # A room we left (or hold only an invite of): its events are none of our
            # business any more, as Synapse ("we're not in the room").
            _fail_all(results, pdus, room_version, "This server is not in the room")
            return
        if not await self._acl.allows(origin, room_id):
            _fail_all(results, pdus, room_version, "Server is banned from this room by its ACL")
            return

        checked = await defer.gatherResults(
            [
                defer.ensureDeferred(self._check_one(origin, room_version, pdu, results))
                for pdu in pdus
            ],
            consumeErrors=True,
        )
        events = [event for event in checked if event is not None]
        if not events:
            return
        try:
            outcomes = await self._path.receive(room_id, events, origin=origin)
        except UnknownRoomError:
            _fail_events(results, events, "This server is not in the room")
            return
        except Exception:
            # A bug, not the sender's fault: answer for these PDUs, keep the rest.
            logger.exception(
                "processing %d PDUs of %s from %s failed", len(events), room_id, origin
            )
            _fail_events(results, events, "Internal error processing the event")
            return
        # The path also reports events it fetched on the way: answer only for ours.
        answered: dict[str, dict[str, str]] = {event.event_id: {} for event in events}
        for outcome in outcomes:
            if outcome.event_id in answered and outcome.error is not None:
                answered[outcome.event_id] = {"error": outcome.error}
        results.update(answered)

    async def _check_one(
        self,
        origin: str,
        room_version: RoomVersion,
        pdu: Mapping[str, Any],
        results: dict[str, dict[str, str]],
    ) -> Event | None:
        try:
            return await self._checker.check(room_version, pdu, origin=origin)
        except InvalidPdu as exc:
            error = f"Invalid PDU: {exc.reason}"
        except Exception:
            logger.exception("checking a PDU from %s failed", origin)
            error = "Internal error checking the PDU"
        event_id = _event_id_of(pdu, room_version)
        if event_id is not None:
            results[event_id] = {"error": error}
        else:
            logger.info("dropping a PDU from %s: %s", origin, error)
        return None

    async def _process_edus(self, origin: str, edus: Sequence[Any]) -> None:
        for edu in edus:
            if not isinstance(edu, Mapping):
                continue
            edu_type = edu.get("edu_type")
            content = edu.get("content")
            if not isinstance(edu_type, str) or not isinstance(content, Mapping):
                logger.info("ignoring a malformed EDU from %s", origin)
                continue
            allowed = await self._within_acls(origin, edu_type, content)
            if allowed is not None:
                await self._edus.dispatch(origin, edu_type, allowed)

    async def _within_acls(
        self, origin: str, edu_type: str, content: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """The EDU as far as the rooms' ACLs let ``origin`` speak in them (None: drop
        it): a typing notification for a room that denies it is ignored, and so are
        the receipts of such rooms.  spec: server-server-api.md#server-access-control-lists-acls
        """
        if edu_type == "m.typing":
            room_id = content.get("room_id")
            if isinstance(room_id, str) and not await self._acl.allows(origin, room_id):
                return None
            return content
        if edu_type == "m.receipt":
            # Each room costs an ACL check (and the handler's reads): a real server
            # sends the few rooms that changed, so the rest of a huge EDU is dropped.
            kept = {
                room_id: receipts
                for room_id, receipts in itertools.islice(content.items(), MAX_RECEIPT_ROOMS)
                if isinstance(room_id, str) and await self._acl.allows(origin, room_id)
            }
            return kept if kept else None
        return content

    async def _maybe_prune(self, now_ms: int) -> None:
        self._until_prune -= 1
        if self._until_prune > 0:
            return
        self._until_prune = _PRUNE_EVERY
        try:
            await self._store.prune(now_ms - RETENTION_MS)
        except Exception:
            logger.exception("pruning received transactions failed")


def _parse_transaction(origin: str, body: Mapping[str, Any]) -> tuple[Sequence[Any], Sequence[Any]]:
    """The PDUs and EDUs of a transaction body; 400 if it is not one.

    spec: data/api/server-server/definitions/transaction.yaml
    """
    if body.get("origin") != origin:
        raise errors.bad_json("'origin' must be the server that signed the request")
    origin_server_ts = body.get("origin_server_ts")
    if type(origin_server_ts) is not int:
        raise errors.bad_json("'origin_server_ts' must be an integer")
    pdus = body.get("pdus")
    if not isinstance(pdus, list):
        raise errors.bad_json("'pdus' must be an array")
    edus = body.get("edus", [])
    if not isinstance(edus, list):
        raise errors.bad_json("'edus' must be an array")
    if len(pdus) > MAX_PDUS:
        raise errors.bad_json(f"A transaction holds at most {MAX_PDUS} PDUs")
    if len(edus) > MAX_EDUS:
        raise errors.bad_json(f"A transaction holds at most {MAX_EDUS} EDUs")
    return pdus, edus


def _event_id_of(pdu: Mapping[str, Any], room_version: RoomVersion | None) -> str | None:
    """The ID to report a refused PDU under, if one can be worked out."""
    if room_version is not None:
        try:
            return compute_event_id(dict(pdu), room_version)
        except Exception:
            return None
    # Without a room version only a v1/v2 event ID (carried in the PDU) is known.
    event_id = pdu.get("event_id")
    return event_id if isinstance(event_id, str) and event_id.startswith("$") else None


def _fail_all(
    results: dict[str, dict[str, str]],
    pdus: Sequence[Mapping[str, Any]],
    room_version: RoomVersion | None,
    error: str,
) -> None:
    for pdu in pdus:
        event_id = _event_id_of(pdu, room_version)
        if event_id is not None:
            results[event_id] = {"error": error}


def _fail_events(results: dict[str, dict[str, str]], events: Sequence[Event], error: str) -> None:
    for event in events:
        results[event.event_id] = {"error": error}
