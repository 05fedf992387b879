"""What the federation sender keeps in the database: SQL only.

Owns ``federation_outbound_positions``, ``federation_outbound_rooms`` and
``federation_outbound_edus`` (schema/0038_federation_outbound.py, which says what
each row means), and ``federation_forwarded_events``
(schema/0040_federation_forwarded.sql).  Reads ``room_memberships`` and ``events`` (owned by
storage.events): who is joined to a room, and the event at a stream position.

spec: server-server-api.md#transactions
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.state import chunks
from homeserver.storage.transaction import Transaction

EDU_ID_SEQUENCE = "federation_outbound_edu_ids"


@attrs.frozen
class QueuedPdu:
    """One local event meant for ``destination``, at its stream position."""

    destination: str
    room_nid: int
    position: int


@attrs.frozen
class MissedRoom:
    """A room whose newest event for a destination is past what it acknowledged."""

    room_nid: int
    position: int
    event_id: str


@attrs.frozen
class MembershipRow:
    user_id: str
    membership: str
    #: The membership event, and its stream position (None for an outlier).
    event_id: str
    position: int | None


@attrs.frozen
class StoredEdu:
    edu_id: int
    edu_type: str
    content: Mapping[str, Any]


class FederationOutboundStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # --- PDUs --------------------------------------------------------------------------

    async def record_queued(self, queued: Sequence[QueuedPdu]) -> None:
        """Remember, per (destination, room), the newest position queued; a destination
        met for the first time is acknowledged up to just before its first PDU here.

        Idempotent (a replayed batch changes nothing), so the stream consumer may
        deliver a batch twice."""
        if queued:
            await self._db.run_interaction("record_federation_queued", _record_queued_txn, queued)

    async def get_acked_position(self, destination: str) -> int | None:
        """Every PDU for ``destination`` up to here was acknowledged (None: none ever
        queued)."""
        rows = await self._db.execute_read(
            "get_federation_acked_position",
            "SELECT acked_position FROM federation_outbound_positions WHERE destination = ?",
            destination,
        )
        return int(rows[0][0]) if rows else None

    async def set_acked_position(self, destination: str, position: int) -> None:
        """Move ``destination``'s acknowledged position up to ``position`` (never down)."""
        await self._db.execute(
            "set_federation_acked_position",
            "INSERT INTO federation_outbound_positions (destination, acked_position)"
            " VALUES (?, ?) ON CONFLICT (destination) DO UPDATE"
            " SET acked_position = excluded.acked_position"
            " WHERE excluded.acked_position > federation_outbound_positions.acked_position",
            destination,
            position,
        )

    async def set_acked_positions(self, positions: Mapping[str, int]) -> None:
        """:meth:`set_acked_position` for many destinations, in one transaction (the
        sender writes positions behind, batched: one commit per acknowledged
        transaction per destination held up every other write)."""
        if positions:
            await self._db.run_interaction(
                "set_federation_acked_positions",
                _set_acked_positions_txn,
                sorted(positions.items()),
            )

    async def missed_rooms(self, destination: str, after: int, limit: int) -> list[MissedRoom]:
        """Rooms whose newest event for ``destination`` is past ``after``, oldest first
        (over ``federation_outbound_rooms_by_position``)."""
        rows = await self._db.execute_read(
            "get_federation_missed_rooms",
            "SELECT q.room_nid, q.stream_ordering, e.event_id"
            " FROM federation_outbound_rooms q"
            " JOIN events e ON e.stream_ordering = q.stream_ordering"
            " WHERE q.destination = ? AND q.stream_ordering > ?"
            " ORDER BY q.stream_ordering LIMIT ?",
            destination,
            after,
            limit,
        )
        return [MissedRoom(int(nid), int(position), str(eid)) for nid, position, eid in rows]

    async def room_events_between(
        self, room_nid: int, after: int, up_to: int, limit: int
    ) -> list[tuple[int, str]]:
        """``(stream_ordering, event_id)`` of the room's visible events in
        ``(after, up_to]``, oldest first, at most ``limit`` (``events_by_room_stream``)."""
        rows = await self._db.execute_read(
            "get_federation_room_events_between",
            "SELECT stream_ordering, event_id FROM events"
            " WHERE room_nid = ? AND stream_ordering > ? AND stream_ordering <= ?"
            " AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed"
            " ORDER BY stream_ordering LIMIT ?",
            room_nid,
            after,
            up_to,
            limit,
        )
        return [(int(position), str(event_id)) for position, event_id in rows]

    async def destinations_behind(self) -> list[str]:
        """Destinations with a room past their acknowledged position (read at start:
        one probe of ``federation_outbound_rooms_by_position`` per destination)."""
        rows = await self._db.execute_read(
            "get_federation_destinations_behind",
            "SELECT p.destination FROM federation_outbound_positions p WHERE EXISTS"
            " (SELECT 1 FROM federation_outbound_rooms q WHERE q.destination = p.destination"
            " AND q.stream_ordering > p.acked_position) ORDER BY p.destination",
        )
        return [str(row[0]) for row in rows]

    async def memberships(self, room_nid: int, after: int) -> list[MembershipRow]:
        """The room's current memberships (``room_memberships``, by its primary key)
        that are joins or were set by an event past stream position ``after`` (whose
        earlier membership the caller may want)."""
        rows = await self._db.execute_read(
            "get_federation_room_memberships",
            "SELECT m.user_id, m.membership, e.event_id, e.stream_ordering"
            " FROM room_memberships m JOIN events e ON e.event_nid = m.event_nid"
            " WHERE m.room_nid = ? AND (m.membership = 'join' OR e.stream_ordering > ?)",
            room_nid,
            after,
        )
        return [
            MembershipRow(str(user), str(membership), str(eid), None if pos is None else int(pos))
            for user, membership, eid, pos in rows
        ]

    # --- durable EDUs ------------------------------------------------------------------

    async def add_edu(
        self, destination: str, edu_type: str, content: Mapping[str, Any], now: int
    ) -> int:
        """Store an EDU for ``destination``; returns its ID (increasing: send order)."""
        [edu_id] = await self.add_edus([destination], edu_type, content, now)
        return edu_id

    async def add_edus(
        self, destinations: Sequence[str], edu_type: str, content: Mapping[str, Any], now: int
    ) -> list[int]:
        """The same EDU for each of ``destinations``, in one transaction; their IDs."""
        encoded = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        return await self._db.run_interaction(
            "add_federation_edus", _add_edus_txn, destinations, edu_type, encoded, now
        )

    async def pending_edus(self, destination: str, limit: int) -> list[StoredEdu]:
        rows = await self._db.execute_read(
            "get_federation_pending_edus",
            "SELECT edu_id, edu_type, content FROM federation_outbound_edus"
            " WHERE destination = ? ORDER BY edu_id LIMIT ?",
            destination,
            limit,
        )
        return [StoredEdu(int(eid), str(kind), json.loads(content)) for eid, kind, content in rows]

    async def delete_edus(self, edu_ids: Collection[int]) -> None:
        if edu_ids:
            await self._db.run_interaction(
                "delete_federation_edus", _delete_edus_txn, sorted(edu_ids)
            )

    # --- remote events passed on -------------------------------------------------------

    async def add_forwarded(self, event_id: str, origin: str, now_ms: int) -> None:
        """Remember to pass the remote event ``event_id`` on, except to ``origin``."""
        await self._db.execute(
            "add_federation_forwarded",
            "INSERT INTO federation_forwarded_events (event_id, origin, created_ts)"
            " VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            event_id,
            origin,
            now_ms,
        )

    async def forwarded_origins(self, event_ids: Collection[str]) -> dict[str, str]:
        """Of ``event_ids``, those to pass on: event ID -> the server it came from."""
        if not event_ids:
            return {}
        return await self._db.run_read(
            "get_federation_forwarded", _forwarded_origins_txn, sorted(event_ids)
        )

    async def prune_forwarded(self, handled_up_to: int) -> int:
        """Forget the remote events passed on that no destination can still need:
        those at a stream position at or below ``handled_up_to`` (the sender's stream
        consumer has handled every event up to there, so it will not read them again)
        and at or below every destination's acknowledged position (catch-up only reads
        events past it: :meth:`room_events_between`).  A row whose event has no stream
        position yet (not persisted: ``add_forwarded`` comes first) stays.  How many
        rows went.

        One statement, so the positions it compares with are those of one moment; the
        acknowledged positions are the written ones, never ahead of what destinations
        acknowledged (``federation.sender.acks``)."""
        return await self._db.run_interaction(
            "prune_federation_forwarded", _prune_forwarded_txn, handled_up_to
        )

    async def destinations_with_edus(self) -> list[str]:
        rows = await self._db.execute_read(
            "get_federation_destinations_with_edus",
            "SELECT DISTINCT destination FROM federation_outbound_edus ORDER BY destination",
        )
        return [str(row[0]) for row in rows]


def _record_queued_txn(txn: Transaction, queued: Sequence[QueuedPdu]) -> None:
    first: dict[str, int] = {}
    newest: dict[tuple[str, int], int] = {}
    for item in queued:
        first[item.destination] = min(first.get(item.destination, item.position), item.position)
        key = (item.destination, item.room_nid)
        newest[key] = max(newest.get(key, item.position), item.position)
    txn.executemany(
        "INSERT INTO federation_outbound_positions (destination, acked_position)"
        " VALUES (?, ?) ON CONFLICT (destination) DO NOTHING",
        [(destination, position - 1) for destination, position in sorted(first.items())],
    )
    txn.executemany(
        "INSERT INTO federation_outbound_rooms (destination, room_nid, stream_ordering)"
        " VALUES (?, ?, ?) ON CONFLICT (destination, room_nid) DO UPDATE"
        " SET stream_ordering = excluded.stream_ordering"
        " WHERE excluded.stream_ordering > federation_outbound_rooms.stream_ordering",
        [(d, nid, position) for (d, nid), position in sorted(newest.items())],
    )


def _set_acked_positions_txn(txn: Transaction, positions: Sequence[tuple[str, int]]) -> None:
    txn.executemany(
        "INSERT INTO federation_outbound_positions (destination, acked_position)"
        " VALUES (?, ?) ON CONFLICT (destination) DO UPDATE"
        " SET acked_position = excluded.acked_position"
        " WHERE excluded.acked_position > federation_outbound_positions.acked_position",
        positions,
    )


def add_edus_txn(
    txn: Transaction, edus: Sequence[tuple[str, str, Mapping[str, Any]]], now: int
) -> list[int]:
    """Store durable EDUs ``(destination, edu_type, content)`` inside another store's
    write transaction, so they commit with the work that produced them (a to-device
    send's transaction ID, a device-list announcement); their IDs.  The caller then
    tells the sender (``FederationSender.durable_edus_stored``); a restart finds
    them anyway."""
    ids: list[int] = []
    for destination, edu_type, content in edus:
        encoded = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        ids.extend(_add_edus_txn(txn, [destination], edu_type, encoded, now))
    return ids


def _add_edus_txn(
    txn: Transaction, destinations: Sequence[str], edu_type: str, content: str, now: int
) -> list[int]:
    rows = [
        (txn.engine.next_id(txn, EDU_ID_SEQUENCE), destination, edu_type, content, now)
        for destination in destinations
    ]
    txn.executemany(
        "INSERT INTO federation_outbound_edus (edu_id, destination, edu_type, content,"
        " created_ts) VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    return [row[0] for row in rows]


def _delete_edus_txn(txn: Transaction, edu_ids: Sequence[int]) -> None:
    for part in chunks(list(edu_ids)):
        marks = ",".join("?" * len(part))
        txn.execute(f"DELETE FROM federation_outbound_edus WHERE edu_id IN ({marks})", part)


def _forwarded_origins_txn(txn: Transaction, event_ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in chunks(list(event_ids)):
        marks = ",".join("?" * len(part))
        txn.execute(
            f"SELECT event_id, origin FROM federation_forwarded_events WHERE event_id IN ({marks})",
            part,
        )
        found.update((str(event_id), str(origin)) for event_id, origin in txn.fetchall())
    return found


def _prune_forwarded_txn(txn: Transaction, handled_up_to: int) -> int:
    # The MIN subquery is uncorrelated: read once, not per row.  No destination yet:
    # only the consumer's position bounds (a destination met later starts past it).
    txn.execute(
        "DELETE FROM federation_forwarded_events WHERE EXISTS"
        " (SELECT 1 FROM events e"
        " WHERE e.event_id = federation_forwarded_events.event_id"
        " AND e.stream_ordering <= ?"
        " AND e.stream_ordering <= COALESCE("
        "(SELECT MIN(acked_position) FROM federation_outbound_positions), ?))",
        (handled_up_to, handled_up_to),
    )
    return txn.rowcount
