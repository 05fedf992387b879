"""Rooms and their event graph: SQL only.

Owns ``rooms``, ``events``, ``event_edges``, ``event_auth_edges``,
``forward_extremities`` and ``room_memberships``.  Events are persisted in batches,
one transaction per batch (group commit): rows, DAG edges, the state group after
each state event, forward extremities, and, when the caller moves it, the room's
current state with the membership index derived from it.  Deciding *what* the state
is (auth checks, state resolution) is the handler's job, not this store's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence

import attrs
from twisted.internet import defer

from homeserver.events.canonical import encode_canonical_json
from homeserver.events.event import Event, InternalMetadata, StateKey
from homeserver.events.room_versions import get_room_version
from homeserver.storage.database import Database
from homeserver.storage.state import StateStore, chunks, event_nids_for_ids_txn
from homeserver.storage.transaction import Transaction
from homeserver.streams.positions import StreamPositions
from homeserver.util.caches import LruCache


class RoomExistsError(Exception):
    pass


@attrs.frozen
class RoomRecord:
    room_nid: int
    room_id: str
    room_version: str
    current_state_group: int | None


@attrs.frozen
class EventToPersist:
    """An event and the state group holding the room state just before it.

    ``state_group_before`` is None only for outliers, which have no place in the
    room's state.
    """

    event: Event
    state_group_before: int | None


@attrs.frozen
class PersistedEvent:
    event_id: str
    stream_ordering: int | None
    state_group_before: int | None
    state_group_after: int | None


class EventStore:
    def __init__(self, database: Database, state: StateStore, *, cache_size: int = 10_000):
        self._db = database
        self._state = state
        self._events: LruCache[str, Event] = LruCache(cache_size)
        # Written only through this store, so kept current after each commit (a
        # second writer process will invalidate them through the replication stream).
        self._rooms: dict[str, RoomRecord] = {}
        self._extremities: dict[int, list[str]] = {}
        self._groups_after: LruCache[str, int] = LruCache(cache_size)
        self._stream: StreamPositions | None = None
        self._stream_loading = defer.DeferredLock()

    # --- rooms ---------------------------------------------------------------------

    async def create_room(self, room_id: str, room_version: str, created_ts: int) -> int:
        def create(txn: Transaction) -> int:
            room_nid = txn.engine.next_id(txn, "room_nids")
            # A concurrent creation of the same room ID conflicts here rather than
            # failing on the unique index (PostgreSQL reports it as a serialization
            # failure, which is retried and then finds the row).
            txn.execute(
                "INSERT INTO rooms (room_nid, room_id, room_version, created_ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (room_id) DO NOTHING",
                (room_nid, room_id, room_version, created_ts),
            )
            if txn.rowcount == 0:
                raise RoomExistsError(room_id)
            return room_nid

        return await self._db.run_interaction("create_room", create)

    async def get_room(self, room_id: str) -> RoomRecord | None:
        cached = self._rooms.get(room_id)
        if cached is not None:
            return cached
        rows = await self._db.execute(
            "get_room",
            "SELECT room_nid, room_id, room_version, current_state_group FROM rooms"
            " WHERE room_id = ?",
            room_id,
        )
        if not rows:
            return None
        room_nid, room_id, version, group = rows[0]
        record = RoomRecord(int(room_nid), room_id, version, None if group is None else int(group))
        self._rooms[room_id] = record
        return record

    # --- persisting ------------------------------------------------------------------

    async def persist_events(
        self,
        room_nid: int,
        batch: Sequence[EventToPersist],
        *,
        new_current_state_group: int | None = None,
        advance_current_state: bool = False,
        chained: bool = False,
    ) -> list[PersistedEvent]:
        """Store ``batch`` in one transaction, in order.

        Non-outliers get the next stream positions; each accepted state event gets a
        new state group (a one-entry delta on its ``state_group_before``).  Forward
        extremities advance past the events' ``prev_events``; soft-failed and rejected
        events never become extremities.  If ``new_current_state_group`` is given,
        the room's current state moves there and the membership index follows;
        ``advance_current_state`` moves it to the state after the batch's last event
        (a local send on top of the current state).  With ``chained`` each event
        follows the one before it: only the first item's ``state_group_before`` is
        read, the others get the state group after their predecessor (a new room's
        initial events, stored all or nothing).
        """
        stream = await self._stream_positions()
        positions = [None if item.event.internal.outlier else stream.allocate() for item in batch]
        try:
            persisted = await self._db.run_interaction(
                "persist_events",
                self._persist_txn,
                room_nid,
                batch,
                positions,
                new_current_state_group,
                advance_current_state,
                chained,
            )
        finally:
            for position in positions:
                if position is not None:
                    stream.finish(position)
        # Announcing an event before an earlier position commits would let a reader
        # skip that earlier event for good.
        allocated = [position for position in positions if position is not None]
        if allocated:
            await stream.wait_until_visible(max(allocated))
        for item, result in zip(batch, persisted, strict=True):
            item.event.internal.stream_ordering = result.stream_ordering
            item.event.internal.state_group_before = result.state_group_before
            self._events.set(item.event.event_id, item.event)
        return persisted

    def _persist_txn(
        self,
        txn: Transaction,
        room_nid: int,
        batch: Sequence[EventToPersist],
        positions: Sequence[int | None],
        new_current_state_group: int | None,
        advance_current_state: bool,
        chained: bool,
    ) -> list[PersistedEvent]:
        results: list[PersistedEvent] = []
        for item, position in zip(batch, positions, strict=True):
            if chained and results:
                item = attrs.evolve(item, state_group_before=results[-1].state_group_after)
            results.append(self._persist_one_txn(txn, room_nid, item, position))
        if advance_current_state and results:
            new_current_state_group = results[-1].state_group_after
        if new_current_state_group is not None:
            self._move_current_state_txn(txn, room_nid, new_current_state_group)
        txn.execute(
            "SELECT e.event_id FROM forward_extremities f JOIN events e"
            " ON e.event_nid = f.event_nid WHERE f.room_nid = ? ORDER BY e.event_id",
            (room_nid,),
        )
        extremities = [row[0] for row in txn.fetchall()]
        txn.execute("SELECT room_id FROM rooms WHERE room_nid = ?", (room_nid,))
        room_row = txn.fetchone()
        txn.call_after_commit(
            functools.partial(
                self._after_persist,
                room_nid,
                None if room_row is None else room_row[0],
                extremities,
                new_current_state_group,
                [(result.event_id, result.state_group_after) for result in results],
            )
        )
        return results

    def _after_persist(
        self,
        room_nid: int,
        room_id: str | None,
        extremities: list[str],
        new_current_state_group: int | None,
        groups_after: list[tuple[str, int | None]],
    ) -> None:
        self._extremities[room_nid] = extremities
        for event_id, group in groups_after:
            if group is not None:
                self._groups_after.set(event_id, group)
        cached = self._rooms.get(room_id) if room_id is not None else None
        if cached is not None and new_current_state_group is not None:
            self._rooms[cached.room_id] = attrs.evolve(
                cached, current_state_group=new_current_state_group
            )

    def _persist_one_txn(
        self, txn: Transaction, room_nid: int, item: EventToPersist, stream_ordering: int | None
    ) -> PersistedEvent:
        event, internal = item.event, item.event.internal
        event_nid = txn.engine.next_id(txn, "event_nids")
        group_after = item.state_group_before
        if (
            item.state_group_before is not None
            and event.is_state()
            and not event.rejected
            and not internal.soft_failed
        ):
            base = item.state_group_before
            change = {event.state_key_tuple: event.event_id}
            # The event row must exist before a state group can refer to it.
            self._insert_event_txn(txn, room_nid, event_nid, stream_ordering, item, None)
            group_after = self._state.store_delta_txn(txn, room_nid, base, change)
            txn.execute(
                "UPDATE events SET state_group_after = ? WHERE event_nid = ?",
                (group_after, event_nid),
            )
            after = self._state.cached_state_after(base, change)
            if after is not None:
                txn.call_after_commit(
                    functools.partial(self._state.cache_group, group_after, after)
                )
        else:
            self._insert_event_txn(txn, room_nid, event_nid, stream_ordering, item, group_after)
        txn.executemany(
            "INSERT INTO event_edges (event_nid, prev_event_id) VALUES (?, ?)",
            [(event_nid, prev) for prev in dict.fromkeys(event.prev_event_ids)],
        )
        txn.executemany(
            "INSERT INTO event_auth_edges (event_nid, auth_event_id) VALUES (?, ?)",
            [(event_nid, auth) for auth in dict.fromkeys(event.auth_event_ids)],
        )
        if not internal.outlier:
            self._update_extremities_txn(txn, room_nid, event_nid, event)
        return PersistedEvent(event.event_id, stream_ordering, item.state_group_before, group_after)

    def _insert_event_txn(
        self,
        txn: Transaction,
        room_nid: int,
        event_nid: int,
        stream_ordering: int | None,
        item: EventToPersist,
        group_after: int | None,
    ) -> None:
        event, internal = item.event, item.event.internal
        txn.execute(
            "INSERT INTO events (event_nid, event_id, room_nid, type, state_key, sender, depth,"
            " origin_server_ts, stream_ordering, outlier, rejected_reason, soft_failed,"
            " state_group_before, state_group_after, txn_device_id, txn_id, replaces_state,"
            " json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_nid,
                event.event_id,
                room_nid,
                event.type,
                event.state_key,
                event.sender,
                event.depth,
                event.origin_server_ts,
                stream_ordering,
                internal.outlier,
                internal.rejected_reason,
                internal.soft_failed,
                item.state_group_before,
                group_after,
                internal.device_id if internal.txn_id is not None else None,
                internal.txn_id,
                internal.replaces_state,
                encode_canonical_json(event.pdu).decode("utf-8"),
            ),
        )
        if event.rejected or internal.soft_failed:
            return
        if event.type == "m.room.redaction" and event.redacts is not None:
            txn.execute(
                "INSERT INTO redactions (redacts_event_id, redaction_event_nid) VALUES (?, ?)",
                (event.redacts, event_nid),
            )
            # A redacted event no longer counts as an edit, reaction or thread reply.
            txn.execute(
                "DELETE FROM event_relations WHERE event_nid IN"
                " (SELECT event_nid FROM events WHERE event_id = ?)",
                (event.redacts,),
            )
        relation = relation_of(event)
        if relation is not None:
            txn.execute(
                "INSERT INTO event_relations"
                " (event_nid, room_nid, relates_to_id, rel_type, aggregation_key)"
                " VALUES (?, ?, ?, ?, ?)",
                (event_nid, room_nid, *relation),
            )

    def _update_extremities_txn(
        self, txn: Transaction, room_nid: int, event_nid: int, event: Event
    ) -> None:
        if event.rejected or event.internal.soft_failed:
            # Neither an extremity itself nor a reason for its parents to stop being ones.
            return
        prev_nids = list(event_nids_for_ids_txn(txn, event.prev_event_ids).values())
        for part in chunks(prev_nids):
            marks = ",".join("?" * len(part))
            txn.execute(
                f"DELETE FROM forward_extremities WHERE room_nid = ? AND event_nid IN ({marks})",
                (room_nid, *part),
            )
        # An event some stored event already points at is not an extremity (it
        # arrived late, after its children).
        txn.execute("SELECT 1 FROM event_edges WHERE prev_event_id = ? LIMIT 1", (event.event_id,))
        if txn.fetchone() is None:
            txn.execute(
                "INSERT INTO forward_extremities (room_nid, event_nid) VALUES (?, ?)",
                (room_nid, event_nid),
            )

    def _move_current_state_txn(self, txn: Transaction, room_nid: int, new_group: int) -> None:
        txn.execute("SELECT current_state_group FROM rooms WHERE room_nid = ?", (room_nid,))
        row = txn.fetchone()
        old_group = None if row is None or row[0] is None else int(row[0])
        if old_group == new_group:
            return
        txn.execute(
            "UPDATE rooms SET current_state_group = ? WHERE room_nid = ?", (new_group, room_nid)
        )
        changed = self._changed_members_txn(txn, old_group, new_group)
        if not changed:
            return
        nids = event_nids_for_ids_txn(txn, [e for e in changed.values() if e is not None])
        for user_id, event_id in changed.items():
            if event_id is None:
                txn.execute(
                    "DELETE FROM room_memberships WHERE room_nid = ? AND user_id = ?",
                    (room_nid, user_id),
                )
                continue
            txn.execute("SELECT json FROM events WHERE event_nid = ?", (nids[event_id],))
            membership_row = txn.fetchone()
            assert membership_row is not None
            membership = json.loads(membership_row[0]).get("content", {}).get("membership")
            txn.execute(
                "INSERT INTO room_memberships (room_nid, user_id, membership, event_nid)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (room_nid, user_id) DO UPDATE SET"
                " membership = excluded.membership, event_nid = excluded.event_nid",
                (room_nid, user_id, str(membership), nids[event_id]),
            )

    def _changed_members_txn(
        self, txn: Transaction, old_group: int | None, new_group: int
    ) -> dict[str, str | None]:
        """user ID -> new membership event ID (None: gone) between two current states."""
        txn.execute("SELECT prev_state_group FROM state_groups WHERE state_group = ?", (new_group,))
        row = txn.fetchone()
        if old_group is not None and row is not None and row[0] == old_group:
            # The usual case: the new state is a delta on the old one, so only the
            # delta's entries can have changed — no need to read either whole state.
            txn.execute(
                "SELECT k.state_key, ev.event_id FROM state_group_entries e"
                " JOIN state_keys k ON k.state_key_nid = e.state_key_nid"
                " LEFT JOIN events ev ON ev.event_nid = e.event_nid"
                " WHERE e.state_group = ? AND k.type = 'm.room.member'",
                (new_group,),
            )
            return {user_id: event_id for user_id, event_id in txn.fetchall()}
        old = self._state.read_group_txn(txn, old_group) if old_group is not None else {}
        return _changed_members(old, self._state.read_group_txn(txn, new_group))

    # --- reading -----------------------------------------------------------------------

    async def get_events(self, event_ids: Sequence[str]) -> dict[str, Event]:
        """The stored events among ``event_ids`` (unknown IDs are left out)."""
        found: dict[str, Event] = {}
        missing = []
        for event_id in event_ids:
            cached = self._events.get(event_id)
            if cached is not None:
                found[event_id] = cached
            else:
                missing.append(event_id)
        if missing:
            loaded = await self._db.run_interaction("get_events", _load_events_txn, missing)
            for event in loaded:
                self._events.set(event.event_id, event)
                found[event.event_id] = event
        return found

    async def get_event_id_for_transaction(
        self, sender: str, device_id: str | None, txn_id: str, *, room_nid: int, event_type: str
    ) -> str | None:
        """The event a client already sent with this transaction ID, for idempotency.

        A transaction ID is scoped to the device and the request path, so the same ID
        in another room or for another event type is a different request.
        spec: client-server-api/_index.md#transaction-identifiers
        """
        rows = await self._db.execute(
            "get_event_id_for_transaction",
            "SELECT event_id FROM events WHERE sender = ? AND txn_device_id = ? AND txn_id = ?"
            " AND room_nid = ? AND type = ?",
            sender,
            device_id,
            txn_id,
            room_nid,
            event_type,
        )
        return rows[0][0] if rows else None

    async def get_forward_extremities(self, room_nid: int) -> list[str]:
        cached = self._extremities.get(room_nid)
        if cached is not None:
            return list(cached)
        rows = await self._db.execute(
            "get_forward_extremities",
            "SELECT e.event_id FROM forward_extremities f"
            " JOIN events e ON e.event_nid = f.event_nid WHERE f.room_nid = ?"
            " ORDER BY e.event_id",
            room_nid,
        )
        self._extremities[room_nid] = [row[0] for row in rows]
        return [row[0] for row in rows]

    async def get_state_groups_after(self, event_ids: Sequence[str]) -> dict[str, int]:
        """The state group after each of ``event_ids`` (for computing a new event's state)."""

        groups: dict[str, int] = {}
        missing = []
        for event_id in event_ids:
            cached = self._groups_after.get(event_id)
            if cached is None:
                missing.append(event_id)
            else:
                groups[event_id] = cached
        if not missing:
            return groups

        def read(txn: Transaction) -> dict[str, int]:
            for part in chunks(missing):
                marks = ",".join("?" * len(part))
                txn.execute(
                    "SELECT event_id, state_group_after FROM events"
                    f" WHERE event_id IN ({marks}) AND state_group_after IS NOT NULL",
                    part,
                )
                groups.update({event_id: int(group) for event_id, group in txn.fetchall()})
            return groups

        loaded = await self._db.run_interaction("get_state_groups_after", read)
        for event_id, group in loaded.items():
            self._groups_after.set(event_id, group)
        return loaded

    async def get_rooms_for_user(self, user_id: str, membership: str = "join") -> list[str]:
        rows = await self._db.execute(
            "get_rooms_for_user",
            "SELECT r.room_id FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid"
            " WHERE m.user_id = ? AND m.membership = ? ORDER BY r.room_id",
            user_id,
            membership,
        )
        return [row[0] for row in rows]

    async def get_room_members(self, room_nid: int, membership: str = "join") -> list[str]:
        rows = await self._db.execute(
            "get_room_members",
            "SELECT user_id FROM room_memberships WHERE room_nid = ? AND membership = ?"
            " ORDER BY user_id",
            room_nid,
            membership,
        )
        return [row[0] for row in rows]

    async def get_max_stream_ordering(self) -> int:
        """The events stream position up to which every event is written."""
        return (await self._stream_positions()).current

    async def _stream_positions(self) -> StreamPositions:
        """Positions are allocated here, in this process (the only event writer),
        starting after the highest one stored."""
        if self._stream is None:
            async with self._stream_loading:
                if self._stream is None:
                    rows = await self._db.execute(
                        "get_max_stream_ordering",
                        "SELECT COALESCE(MAX(stream_ordering), 0) FROM events",
                    )
                    self._stream = StreamPositions(int(rows[0][0]))
        return self._stream


def _changed_members(
    old: Mapping[StateKey, str], new: Mapping[StateKey, str]
) -> dict[str, str | None]:
    """user ID -> new membership event ID (None when it left the state)."""
    changed: dict[str, str | None] = {}
    for (event_type, state_key), event_id in new.items():
        if event_type == "m.room.member" and old.get((event_type, state_key)) != event_id:
            changed[state_key] = event_id
    for event_type, state_key in old:
        if event_type == "m.room.member" and (event_type, state_key) not in new:
            changed[state_key] = None
    return changed


def relation_of(event: Event) -> tuple[str, str, str | None] | None:
    """``(relates_to event ID, rel_type, reaction key)`` of an event's ``m.relates_to``.

    spec: client-server-api/_index.md#forming-relationships-between-events
    """
    relates_to = event.content.get("m.relates_to")
    if not isinstance(relates_to, dict):
        return None
    parent, rel_type = relates_to.get("event_id"), relates_to.get("rel_type")
    if not isinstance(parent, str) or not isinstance(rel_type, str):
        return None
    key = relates_to.get("key") if rel_type == "m.annotation" else None
    return parent, rel_type, key if isinstance(key, str) else None


def _load_events_txn(txn: Transaction, event_ids: Sequence[str]) -> list[Event]:
    events = []
    for part in chunks(list(event_ids)):
        marks = ",".join("?" * len(part))
        txn.execute(
            "SELECT e.event_id, e.json, r.room_version, e.rejected_reason, e.soft_failed,"
            " e.outlier, e.txn_id, e.txn_device_id, e.stream_ordering, e.replaces_state,"
            " e.state_group_before"
            " FROM events e JOIN rooms r ON r.room_nid = e.room_nid"
            f" WHERE e.event_id IN ({marks})",
            part,
        )
        for (
            event_id,
            pdu_json,
            version,
            rejected,
            soft_failed,
            outlier,
            txn_id,
            device,
            stream_ordering,
            replaces_state,
            group_before,
        ) in txn.fetchall():
            internal = InternalMetadata(
                rejected_reason=rejected,
                soft_failed=bool(soft_failed),
                outlier=bool(outlier),
                txn_id=txn_id,
                device_id=device,
                stream_ordering=None if stream_ordering is None else int(stream_ordering),
                replaces_state=replaces_state,
                state_group_before=None if group_before is None else int(group_before),
            )
            events.append(
                Event(json.loads(pdu_json), get_room_version(version), event_id, internal)
            )
    return events
