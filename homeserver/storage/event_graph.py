"""Reads of the event graph that other servers ask for: SQL only.

Auth chains, the state at an event, the events between two points of the graph
(``/get_missing_events``), history before some events (``/backfill``), the stored
PDUs as federation sends them, and the servers in a room.  The graph's edges live
in each event's JSON (the edge tables are gone, migration 0019), so a walk reads
events layer by layer — one indexed ``event_id IN (...)`` query per layer, inside
one read transaction — and every walk is bounded.  Backfill reads the graph index
``events_by_room_graph (room_nid, depth, stream_ordering)`` instead of walking.

spec: server-server-api.md#retrieving-events,
server-server-api.md#backfilling-and-retrieving-missing-events,
server-server-api.md#get_matrixfederationv1state_idsroomid
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import attrs

from homeserver.events.event import StateKey
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.storage.database import Database
from homeserver.storage.event_json import stored_event_json
from homeserver.storage.state import StateStore, chunks
from homeserver.storage.transaction import Transaction
from homeserver.util.caches import LruCache

#: Events an auth chain walk reads at most (a room's auth chain is its create, power
#: levels, join rules and the memberships that built them: thousands in big rooms).
MAX_AUTH_CHAIN = 100_000
#: ``/get_missing_events`` and ``/backfill`` answer at most this many events
#: (Synapse's caps are 20 and 100; a generous bound on what a caller may ask).
MAX_WALK = 1_000
#: Memberships remembered by member event (immutable), for the servers at an event.
_MEMBERSHIP_CACHE = 100_000
#: Joined servers remembered per state group (immutable).
_SERVERS_CACHE = 10_000


class AuthChainTooLarge(Exception):
    pass


@attrs.frozen
class StoredPdu:
    """One stored event as federation serves it: its canonical JSON byte for byte."""

    event_id: str
    room_id: str
    room_version: str
    depth: int
    #: The canonical JSON as received or built (what was hashed and signed).
    json: bytes
    outlier: bool
    rejected: bool
    soft_failed: bool

    def pdu(self) -> dict[str, Any]:
        """The PDU as a JSON object (``unsigned`` as stored)."""
        parsed: dict[str, Any] = json.loads(self.json)
        return parsed

    def federation_pdu(self) -> dict[str, Any]:
        """The PDU as federation sends it: without what this server keeps in
        ``unsigned`` (an invite's stripped state, ...), which no signature covers."""
        pdu = self.pdu()
        pdu.pop("unsigned", None)
        return pdu

    def references(self) -> tuple[list[str], list[str]]:
        """``(prev_events, auth_events)`` IDs, in either event format; in v12 rooms
        the auth events include the create event, which the room ID names rather
        than the event lists (as the auth rules read it).  spec: rooms/v12.md"""
        pdu = self.pdu()
        auth = _ids(pdu.get("auth_events"))
        version = KNOWN_ROOM_VERSIONS.get(self.room_version)
        if version is not None and version.hydra and pdu.get("type") != "m.room.create":
            create_id = "$" + self.room_id[1:]
            if create_id not in auth:
                auth.append(create_id)
        return _ids(pdu.get("prev_events")), auth


def _ids(references: Any) -> list[str]:
    # v1/v2 references are [event_id, {hashes}] pairs; later versions bare IDs.
    if not isinstance(references, list):
        return []
    found = []
    for reference in references:
        if isinstance(reference, list) and reference and isinstance(reference[0], str):
            found.append(reference[0])
        elif isinstance(reference, str):
            found.append(reference)
    return found


_PDU_COLUMNS = (
    "e.event_id, r.room_id, r.room_version, e.depth, e.json, e.pdu, e.outlier,"
    " e.rejected_reason, e.soft_failed"
)


#: A backfill page: the room's graph index read downwards from a depth.
BACKFILL_QUERY = (
    f"SELECT {_PDU_COLUMNS} FROM events e JOIN rooms r ON r.room_nid = e.room_nid"
    " WHERE e.room_nid = ? AND e.depth <= ? AND e.outlier = ?"
    " AND e.rejected_reason IS NULL"
    " ORDER BY e.depth DESC, e.stream_ordering DESC LIMIT ?"
)


def _pdu_from_row(row: Sequence[Any]) -> StoredPdu:
    event_id, room_id, version, depth, text, compressed, outlier, rejected, soft_failed = row
    return StoredPdu(
        event_id,
        room_id,
        version,
        int(depth),
        stored_event_json(text, compressed),
        bool(outlier),
        rejected is not None,
        bool(soft_failed),
    )


def load_pdus_txn(txn: Transaction, event_ids: Iterable[str]) -> dict[str, StoredPdu]:
    """The stored events among ``event_ids`` (one indexed query per 500)."""
    found: dict[str, StoredPdu] = {}
    for part in chunks(list(dict.fromkeys(event_ids))):
        marks = ",".join("?" * len(part))
        txn.execute(
            f"SELECT {_PDU_COLUMNS} FROM events e JOIN rooms r ON r.room_nid = e.room_nid"
            f" WHERE e.event_id IN ({marks})",
            part,
        )
        for row in txn.fetchall():
            pdu = _pdu_from_row(row)
            found[pdu.event_id] = pdu
    return found


class EventGraphStore:
    def __init__(self, database: Database, state: StateStore) -> None:
        self._db = database
        self._state = state
        self._memberships: LruCache[str, tuple[str, str | None]] = LruCache(_MEMBERSHIP_CACHE)
        self._servers_by_group: LruCache[int, frozenset[str]] = LruCache(_SERVERS_CACHE)

    async def get_pdu_json(self, event_ids: Collection[str]) -> dict[str, StoredPdu]:
        """The stored PDUs among ``event_ids`` (unknown IDs are left out)."""
        return await self._db.run_read("get_pdu_json", load_pdus_txn, list(event_ids))

    async def get_auth_chain_ids(
        self, event_ids: Collection[str], *, include_given: bool = False
    ) -> set[str]:
        """Every stored event reachable from ``event_ids`` through ``auth_events``
        (the given events themselves only with ``include_given``, or when another
        cites them).  Raises :class:`AuthChainTooLarge` past :data:`MAX_AUTH_CHAIN`.
        spec: GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}"""

        def walk(txn: Transaction) -> set[str]:
            start = load_pdus_txn(txn, event_ids)
            found: set[str] = set(start) if include_given else set()
            seen: set[str] = set(start)
            layer = {a for pdu in start.values() for a in pdu.references()[1]}
            while layer:
                found.update(layer)
                seen.update(layer)
                if len(found) > MAX_AUTH_CHAIN:
                    raise AuthChainTooLarge()
                loaded = load_pdus_txn(txn, layer)
                found.difference_update(set(layer) - set(loaded))
                layer = {a for pdu in loaded.values() for a in pdu.references()[1] if a not in seen}
            return found

        return await self._db.run_read("get_auth_chain_ids", walk)

    async def get_state_ids_before(self, event_id: str) -> dict[StateKey, str] | None:
        """The room state just before ``event_id`` (not including it), as
        ``/state_ids`` answers; None when the event is unknown or an outlier (no
        place in the graph).  spec: GET /_matrix/federation/v1/state_ids/{roomId}"""
        rows = await self._db.execute_read(
            "get_state_group_before",
            "SELECT state_group_before FROM events WHERE event_id = ? AND outlier = ?",
            event_id,
            False,
        )
        if not rows or rows[0][0] is None:
            return None
        return dict(await self._state.get_state_ids(int(rows[0][0])))

    async def get_missing_events(
        self,
        room_id: str,
        *,
        earliest: Collection[str],
        latest: Collection[str],
        limit: int,
        min_depth: int,
    ) -> list[StoredPdu]:
        """The events before ``latest``, walking ``prev_events`` back (nearest
        first), stopping at ``earliest`` and below ``min_depth``; ``latest`` and
        ``earliest`` themselves excluded; at most ``limit`` (≤ :data:`MAX_WALK`).
        Oldest first, as Synapse answers; rejected events and outliers are left out.
        spec: POST /_matrix/federation/v1/get_missing_events/{roomId}"""
        limit = max(0, min(limit, MAX_WALK))

        def walk(txn: Transaction) -> list[StoredPdu]:
            seen = set(earliest) | set(latest)
            start = load_pdus_txn(txn, latest)
            layer = [
                p
                for pdu in start.values()
                if pdu.room_id == room_id
                for p in pdu.references()[0]
                if p not in seen
            ]
            found: list[StoredPdu] = []
            while layer and len(found) < limit:
                seen.update(layer)
                loaded = load_pdus_txn(txn, layer)
                # Nearest first: the deepest of the layer.
                wanted = sorted(
                    (
                        pdu
                        for pdu in loaded.values()
                        if pdu.room_id == room_id
                        and pdu.depth >= min_depth
                        and not pdu.outlier
                        and not pdu.rejected
                    ),
                    key=lambda pdu: (-pdu.depth, pdu.event_id),
                )[: limit - len(found)]
                found.extend(wanted)
                layer = list(
                    dict.fromkeys(p for pdu in wanted for p in pdu.references()[0] if p not in seen)
                )
            return sorted(found, key=lambda pdu: (pdu.depth, pdu.event_id))

        return await self._db.run_read("get_missing_events", walk)

    async def get_backfill(
        self, room_id: str, from_event_ids: Collection[str], limit: int
    ) -> list[StoredPdu]:
        """History up to ``from_event_ids`` (included), newest first by depth then
        arrival, at most ``limit`` (≤ :data:`MAX_WALK`): read from the graph index
        below the deepest starting event rather than walked, so a page costs its size.
        Rejected events and outliers are left out.
        spec: GET /_matrix/federation/v1/backfill/{roomId}"""
        limit = max(0, min(limit, MAX_WALK))

        def read(txn: Transaction) -> list[StoredPdu]:
            start = {
                event_id: pdu
                for event_id, pdu in load_pdus_txn(txn, from_event_ids).items()
                if pdu.room_id == room_id and not pdu.outlier
            }
            if not start or limit == 0:
                return []
            txn.execute("SELECT room_nid FROM rooms WHERE room_id = ?", (room_id,))
            row = txn.fetchone()
            if row is None:
                return []
            txn.execute(
                BACKFILL_QUERY,
                (int(row[0]), max(pdu.depth for pdu in start.values()), False, limit),
            )
            return [_pdu_from_row(r) for r in txn.fetchall()]

        return await self._db.run_read("get_backfill", read)

    async def get_joined_servers(self, room_id: str) -> frozenset[str]:
        """The servers with a member joined in the room's current state (from the
        membership index); for a room joined with partial state, whose index lacks
        most members, the servers the resident named at the join as well."""
        rows = await self._db.execute_read(
            "get_joined_servers",
            "SELECT m.user_id FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid"
            " WHERE r.room_id = ? AND m.membership = ?",
            room_id,
            "join",
        )
        servers = {_server_of(user_id) for (user_id,) in rows}
        partial = await self._db.execute_read(
            "get_partial_state_servers",
            "SELECT servers_in_room FROM partial_state_rooms WHERE room_id = ?",
            room_id,
        )
        if partial:
            listed = json.loads(str(partial[0][0]))
            servers.update(s for s in listed if isinstance(s, str))
        return frozenset(servers)

    def forget_cached_servers(self) -> None:
        """Drop the servers remembered per state group: a partial-state room's
        completion changed some groups' members."""
        self._servers_by_group.clear()

    async def get_servers_at(self, event_id: str) -> frozenset[str] | None:
        """The servers with a member joined in the state just after ``event_id``;
        None when the event has no place in the graph (unknown or an outlier)."""
        rows = await self._db.execute_read(
            "get_state_group_after",
            "SELECT state_group_after FROM events WHERE event_id = ? AND outlier = ?",
            event_id,
            False,
        )
        if not rows or rows[0][0] is None:
            return None
        group = int(rows[0][0])
        cached = self._servers_by_group.get(group)
        if cached is not None:
            return cached
        state = await self._state.get_state_ids(group)
        servers = await self._joined_servers(state)
        self._servers_by_group.set(group, servers)
        return servers

    async def _joined_servers(self, state: Mapping[StateKey, str]) -> frozenset[str]:
        member_events = {
            event_id: state_key
            for (event_type, state_key), event_id in state.items()
            if event_type == "m.room.member"
        }
        memberships: dict[str, str | None] = {}
        unknown = []
        for event_id in member_events:
            cached = self._memberships.get(event_id)
            if cached is None:
                unknown.append(event_id)
            else:
                memberships[event_id] = cached[1]
        if unknown:
            loaded = await self.get_pdu_json(unknown)
            for event_id, pdu in loaded.items():
                content = pdu.pdu().get("content")
                membership = content.get("membership") if isinstance(content, dict) else None
                value = membership if isinstance(membership, str) else None
                self._memberships.set(event_id, (member_events[event_id], value))
                memberships[event_id] = value
        return frozenset(
            _server_of(member_events[event_id])
            for event_id, membership in memberships.items()
            if membership == "join"
        )


def _server_of(user_id: str) -> str:
    return user_id.partition(":")[2]
