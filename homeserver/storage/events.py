"""Rooms and their event graph: SQL only.

Owns ``rooms``, ``events`` (each event's canonical JSON compressed, see
``storage.event_json``), ``forward_extremities``, ``backward_extremities`` (prev
events cited but not held in the graph) and ``room_memberships``.  Events are
persisted in batches, one transaction per batch (group commit): rows, the state
group after each state event, forward and backward extremities, and, when the
caller moves it, the room's current state with the membership index derived from
it.  Deciding *what* the state
is (auth checks, state resolution) is the handler's job, not this store's.
"""

from __future__ import annotations

import functools
import json
import weakref
from collections.abc import Collection, Mapping, Sequence

import attrs

from homeserver.events.event import Event, StateKey
from homeserver.storage.database import Database
from homeserver.storage.event_json import compress_event_json, stored_event_json
from homeserver.storage.event_rows import load_events_txn
from homeserver.storage.event_rows import relation_of as relation_of  # serialize.py reads it here
from homeserver.storage.group_commit import GroupCommitter
from homeserver.storage.state import StateStore, chunks, event_nids_for_ids_txn
from homeserver.storage.transaction import Transaction
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.positions import LazyStreamPositions, PositionsWrite, StreamPositions
from homeserver.util.caches import LruCache


class RoomExistsError(Exception):
    pass


@attrs.frozen
class RoomRecord:
    room_nid: int
    room_id: str
    room_version: str
    current_state_group: int | None


@attrs.frozen(eq=False)
class NewStateGroup:
    """A state group a batch of events creates: ``base``'s state with ``changes``
    applied (a snapshot of ``changes`` when ``base`` is None).

    The event path decides these before anything is written (the state after a state
    event, a resolution across forks); the store assigns them IDs inside the batch's
    transaction, once the events they name are stored.  ``state`` is the whole
    result, kept for the state cache.
    """

    base: StateGroupRef | None
    changes: Mapping[StateKey, str | None]
    state: Mapping[StateKey, str]


#: A state group already stored (its ID) or one the batch will create.
StateGroupRef = int | NewStateGroup


@attrs.frozen
class EventToPersist:
    """An event with the room state just before and just after it.

    ``state_before`` is None only for outliers, which have no place in the room's
    state; ``state_after`` None means "the same as before" (not a state event, or
    rejected).
    """

    event: Event
    state_before: StateGroupRef | None
    state_after: StateGroupRef | None = None
    #: The event is stored without its place in the graph (an outlier, or an
    #: out-of-band membership) and now takes it: its row is updated, not inserted.
    replaces_outlier: bool = False
    #: A membership of a local user in a room this server is not in (an invite
    #: received, a rejection or knock sent through another server): it gets a
    #: stream position and the user's row in the membership index, but no state.
    out_of_band: bool = False


@attrs.frozen
class CurrentStateChange:
    """The room's current state moves to ``group``; ``changes`` are the entries that
    differ from the current state it replaces (None: removed), which is what the
    membership index needs."""

    group: StateGroupRef
    changes: Mapping[StateKey, str | None]


@attrs.frozen(eq=False)
class RoomBatch:
    """What one room's batch of events writes, in one transaction."""

    room_nid: int
    events: Sequence[EventToPersist]
    #: Forward extremities that stop being ones and new ones (event IDs).
    extremities_removed: Sequence[str] = ()
    extremities_added: Sequence[str] = ()
    current_state: CurrentStateChange | None = None
    #: The room's batch this one was decided on top of, if that was not yet written
    #: when this one was submitted: if it fails, so does this one.
    after: RoomBatch | None = None
    #: History older than what the room holds: its events get negative stream
    #: positions (never new to /sync; placed by depth for /messages).
    backfilled: bool = False
    #: Backfilled into a room whose state is partial: the groups it writes are
    #: recorded, for the completion to leave alone (``storage.partial_state``).
    history_while_partial: bool = False
    #: Prev events cited by the batch's timeline events that the room holds only as
    #: outliers (gaps), and gaps the batch closes (the event takes its place).
    backward_added: Sequence[str] = ()
    backward_removed: Sequence[str] = ()


class PredecessorFailedError(Exception):
    """A batch was decided on top of one that could not be written."""


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
        self._backward: dict[int, set[str]] = {}
        self._backward_changes = 0
        self._groups_after: LruCache[str, int] = LruCache(cache_size)
        # The events stream's tracker: positions come from the ``events_stream``
        # sequence inside the writing transaction; at start-up everything up to the
        # highest one stored is visible.
        self._stream = LazyStreamPositions("events_stream", self._highest_stored)
        #: Rooms (by nid) with events, and users with membership events, after a
        #: position; recorded at commit, created with the stream's tracker.
        self._room_changes: StreamChangeCache[int] | None = None
        self._membership_changes: StreamChangeCache[str] | None = None
        self._committer: GroupCommitter[RoomBatch, list[PersistedEvent]] = GroupCommitter(
            self._persist_batches
        )
        #: New state groups already written, by the reference their batch gave them
        #: (a later batch decided before the write may still name them so).
        self._written_groups: weakref.WeakKeyDictionary[NewStateGroup, int] = (
            weakref.WeakKeyDictionary()
        )
        #: Batches that could not be written (so their successors cannot be either).
        self._failed_batches: weakref.WeakSet[RoomBatch] = weakref.WeakSet()

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

    async def persist_events(self, batch: RoomBatch) -> list[PersistedEvent]:
        """Store one room's batch of events, in order, in one transaction.

        Batches of other rooms submitted meanwhile share that transaction (group
        commit); the call returns once it has committed.  Non-outliers get the next
        stream positions, in batch order.  The caller (the event path) has decided
        everything: each event's state before and after, the forward extremities
        that change, and the room's new current state, if it moves.
        """
        return await self._committer.submit(batch)

    def stored_group(self, ref: StateGroupRef | None) -> StateGroupRef | None:
        """``ref``'s stored ID if it is a new group that has been written, else ``ref``."""
        if isinstance(ref, NewStateGroup):
            return self._written_groups.get(ref, ref)
        return ref

    async def _persist_batches(self, batches: Sequence[RoomBatch]) -> list[list[PersistedEvent]]:
        for batch in batches:
            if batch.after is not None and batch.after in self._failed_batches:
                if len(batches) == 1:
                    self._failed_batches.add(batch)
                raise PredecessorFailedError(f"room {batch.room_nid}: an earlier batch failed")
        try:
            return await self._write_batches(batches)
        except Exception:
            if len(batches) == 1:
                self._failed_batches.add(batches[0])
            raise

    async def _write_batches(self, batches: Sequence[RoomBatch]) -> list[list[PersistedEvent]]:
        stream = await self._stream_positions()
        with stream.writing() as positions:
            persisted = await self._db.run_interaction(
                "persist_events", self._persist_batches_txn, batches, positions
            )
            # Inside the block: leaving it may make the positions visible, and a
            # reader must then find them in the change caches.
            self._record_changes(batches, persisted, stream.current)
        # Announcing an event before an earlier position commits would let a reader
        # skip that earlier event for good.
        allocated = [
            result.stream_ordering
            for results in persisted
            for result in results
            if result.stream_ordering is not None and result.stream_ordering > 0
        ]
        if allocated:
            await stream.wait_until_visible(max(allocated))
        for batch, results in zip(batches, persisted, strict=True):
            for item, result in zip(batch.events, results, strict=True):
                item.event.internal.stream_ordering = result.stream_ordering
                item.event.internal.state_group_before = result.state_group_before
                item.event.internal.mark_stored()
                self._events.set(item.event.event_id, item.event)
        return persisted

    def _persist_batches_txn(
        self, txn: Transaction, batches: Sequence[RoomBatch], positions: PositionsWrite
    ) -> list[list[PersistedEvent]]:
        # Groups created so far in this attempt (a retried transaction starts afresh).
        written: dict[int, int] = {}
        return [self._persist_room_txn(txn, batch, positions, written) for batch in batches]

    def _persist_room_txn(
        self,
        txn: Transaction,
        batch: RoomBatch,
        positions: PositionsWrite,
        written: dict[int, int],
    ) -> list[PersistedEvent]:
        room_nid = batch.room_nid
        written_before = set(written.values())
        results = [
            self._persist_one_txn(
                txn, room_nid, item, self._position_txn(txn, batch, item, positions), written
            )
            for item in batch.events
        ]
        if batch.history_while_partial:
            self._state.mark_history_groups_txn(
                txn, room_nid, sorted(set(written.values()) - written_before)
            )
        if batch.extremities_removed:
            removed = event_nids_for_ids_txn(txn, batch.extremities_removed)
            for part in chunks(list(removed.values())):
                marks = ",".join("?" * len(part))
                txn.execute(
                    "DELETE FROM forward_extremities WHERE room_nid = ?"
                    f" AND event_nid IN ({marks})",
                    (room_nid, *part),
                )
        if batch.extremities_added:
            added = event_nids_for_ids_txn(txn, batch.extremities_added)
            txn.executemany(
                "INSERT INTO forward_extremities (room_nid, event_nid) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                [(room_nid, nid) for nid in added.values()],
            )
        if batch.backward_added or batch.backward_removed:
            txn.call_after_commit(
                functools.partial(
                    self._after_backward_change,
                    room_nid,
                    batch.backward_added,
                    batch.backward_removed,
                )
            )
        if batch.backward_added:
            txn.executemany(
                "INSERT INTO backward_extremities (room_nid, event_id) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                [(room_nid, event_id) for event_id in batch.backward_added],
            )
        for closed in chunks(list(batch.backward_removed)):
            marks = ",".join("?" * len(closed))
            txn.execute(
                f"DELETE FROM backward_extremities WHERE room_nid = ? AND event_id IN ({marks})",
                (room_nid, *closed),
            )
        new_current_group = None
        if batch.current_state is not None:
            new_current_group = self._group_id_txn(
                txn, room_nid, batch.current_state.group, written
            )
            self.move_current_state_txn(
                txn, room_nid, new_current_group, batch.current_state.changes
            )
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
                new_current_group,
                [(result.event_id, result.state_group_after) for result in results],
            )
        )
        return results

    def _position_txn(
        self, txn: Transaction, batch: RoomBatch, item: EventToPersist, positions: PositionsWrite
    ) -> int | None:
        """An event's stream position: none for an outlier; below every other one for
        a backfilled event (its own decreasing counter, never waited for)."""
        if item.event.internal.outlier:
            return None
        if batch.backfilled:
            return -txn.engine.next_id(txn, "backfill_stream")
        return positions.allocate(txn)

    def _group_id_txn(
        self, txn: Transaction, room_nid: int, ref: StateGroupRef, written: dict[int, int]
    ) -> int:
        """The ID of ``ref``, writing it (and any unwritten base) first if it is new."""
        if isinstance(ref, int):
            return ref
        known = written.get(id(ref), self._written_groups.get(ref))
        if known is not None:
            return known
        if ref.base is None:
            group = self._state.store_group_txn(txn, room_nid, ref.state, None, None)
        else:
            base = self._group_id_txn(txn, room_nid, ref.base, written)
            group = self._state.store_delta_txn(txn, room_nid, base, ref.changes)
        written[id(ref)] = group
        txn.call_after_commit(functools.partial(self._state.cache_group, group, ref.state))
        txn.call_after_commit(functools.partial(self._written_groups.__setitem__, ref, group))
        return group

    def _after_backward_change(
        self, room_nid: int, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        self._backward_changes += 1
        cached = self._backward.get(room_nid)
        if cached is not None:
            cached.difference_update(removed)
            cached.update(added)

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
        self,
        txn: Transaction,
        room_nid: int,
        item: EventToPersist,
        stream_ordering: int | None,
        written: dict[int, int],
    ) -> PersistedEvent:
        event = item.event
        replaced = self._stored_outlier_txn(txn, event.event_id) if item.replaces_outlier else None
        event_nid = replaced if replaced is not None else txn.engine.next_id(txn, "event_nids")
        insert = self._insert_event_txn if replaced is None else self._update_outlier_txn
        group_before = (
            None
            if item.state_before is None
            else self._group_id_txn(txn, room_nid, item.state_before, written)
        )
        if item.state_after is None or item.state_after is item.state_before:
            group_after = group_before
            insert(txn, room_nid, event_nid, stream_ordering, event, group_before, group_after)
        else:
            # The event row must exist before a state group can name it.
            insert(txn, room_nid, event_nid, stream_ordering, event, group_before, None)
            group_after = self._group_id_txn(txn, room_nid, item.state_after, written)
            txn.execute(
                "UPDATE events SET state_group_after = ? WHERE event_nid = ?",
                (group_after, event_nid),
            )
        if item.out_of_band and event.state_key is not None and event.membership is not None:
            self._set_membership_txn(txn, room_nid, event.state_key, event.membership, event_nid)
        return PersistedEvent(event.event_id, stream_ordering, group_before, group_after)

    def _insert_event_txn(
        self,
        txn: Transaction,
        room_nid: int,
        event_nid: int,
        stream_ordering: int | None,
        event: Event,
        group_before: int | None,
        group_after: int | None,
    ) -> None:
        internal = event.internal
        txn.execute(
            "INSERT INTO events (event_nid, event_id, room_nid, type, state_key, sender, depth,"
            " origin_server_ts, stream_ordering, outlier, rejected_reason, soft_failed,"
            " state_group_before, state_group_after, txn_device_id, txn_id, replaces_state,"
            " json, pdu) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?)",
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
                group_before,
                group_after,
                internal.device_id if internal.txn_id is not None else None,
                internal.txn_id,
                internal.replaces_state,
                compress_event_json(event.canonical_json),
            ),
        )
        self._index_event_txn(txn, room_nid, event_nid, event)

    def _stored_outlier_txn(self, txn: Transaction, event_id: str) -> int | None:
        """The nid of ``event_id`` if it is stored without its place in the graph (an
        outlier, or an out-of-band membership: no state before it)."""
        txn.execute(
            "SELECT event_nid FROM events WHERE event_id = ?"
            " AND (outlier = ? OR state_group_before IS NULL)",
            (event_id, True),
        )
        row = txn.fetchone()
        return None if row is None else int(row[0])

    def _update_outlier_txn(
        self,
        txn: Transaction,
        room_nid: int,
        event_nid: int,
        stream_ordering: int | None,
        event: Event,
        group_before: int | None,
        group_after: int | None,
    ) -> None:
        """An outlier takes its place in the graph: it gets a stream position and
        state, and the checks' verdict with that state."""
        internal = event.internal
        txn.execute(
            "SELECT rejected_reason, soft_failed FROM events WHERE event_nid = ?", (event_nid,)
        )
        row = txn.fetchone()
        indexed = row is not None and row[0] is None and not row[1]
        txn.execute(
            "UPDATE events SET stream_ordering = ?, outlier = ?, rejected_reason = ?,"
            " soft_failed = ?, state_group_before = ?, state_group_after = ?,"
            " replaces_state = ? WHERE event_nid = ?",
            (
                stream_ordering,
                internal.outlier,
                internal.rejected_reason,
                internal.soft_failed,
                group_before,
                group_after,
                internal.replaces_state,
                event_nid,
            ),
        )
        if not indexed:
            self._index_event_txn(txn, room_nid, event_nid, event)

    def _index_event_txn(
        self, txn: Transaction, room_nid: int, event_nid: int, event: Event
    ) -> None:
        """Redactions and relations of an event that counts (neither rejected nor
        soft-failed)."""
        if event.rejected or event.internal.soft_failed:
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

    def move_current_state_txn(
        self,
        txn: Transaction,
        room_nid: int,
        new_group: int,
        changes: Mapping[StateKey, str | None],
    ) -> None:
        txn.execute(
            "UPDATE rooms SET current_state_group = ? WHERE room_nid = ?", (new_group, room_nid)
        )
        members = {
            state_key: event_id
            for (event_type, state_key), event_id in changes.items()
            if event_type == "m.room.member"
        }
        if not members:
            return
        nids = event_nids_for_ids_txn(txn, [e for e in members.values() if e is not None])
        for user_id, event_id in members.items():
            if event_id is None:
                txn.execute(
                    "DELETE FROM room_memberships WHERE room_nid = ? AND user_id = ?",
                    (room_nid, user_id),
                )
                continue
            txn.execute("SELECT json, pdu FROM events WHERE event_nid = ?", (nids[event_id],))
            membership_row = txn.fetchone()
            assert membership_row is not None
            pdu = json.loads(stored_event_json(*membership_row))
            membership = pdu.get("content", {}).get("membership")
            self._set_membership_txn(txn, room_nid, user_id, str(membership), nids[event_id])

    def _set_membership_txn(
        self, txn: Transaction, room_nid: int, user_id: str, membership: str, event_nid: int
    ) -> None:
        txn.execute(
            "INSERT INTO room_memberships (room_nid, user_id, membership, event_nid)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (room_nid, user_id) DO UPDATE SET"
            " membership = excluded.membership, event_nid = excluded.event_nid",
            (room_nid, user_id, membership, event_nid),
        )

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
            loaded = await self._db.run_read("get_events", load_events_txn, missing)
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
        rows = await self._db.execute_read(
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

    async def get_backward_extremities(
        self, room_nid: int, among: Collection[str] | None = None
    ) -> set[str]:
        """The room's gaps: prev events its timeline cites but does not hold in the
        graph (all of them, or those among ``among``).  Kept in memory per room
        (written only through this store), so the event path asks at every batch."""
        known = self._backward.get(room_nid)
        if known is None:
            changes = self._backward_changes
            rows = await self._db.execute(
                "get_backward_extremities",
                "SELECT event_id FROM backward_extremities WHERE room_nid = ?",
                room_nid,
            )
            known = {row[0] for row in rows}
            # A batch of the room that committed meanwhile may be missing from it.
            if self._backward_changes == changes:
                self._backward[room_nid] = known
        return set(known) if among is None else known.intersection(among)

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

        loaded = await self._db.run_read("get_state_groups_after", read)
        for event_id, group in loaded.items():
            self._groups_after.set(event_id, group)
        return loaded

    async def get_rooms_for_user(self, user_id: str, membership: str = "join") -> list[str]:
        rows = await self._db.execute_read(
            "get_rooms_for_user",
            "SELECT r.room_id FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid"
            " WHERE m.user_id = ? AND m.membership = ? ORDER BY r.room_id",
            user_id,
            membership,
        )
        return [row[0] for row in rows]

    async def get_room_members(self, room_nid: int, membership: str = "join") -> list[str]:
        rows = await self._db.execute_read(
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
        stream = await self._stream.get()
        if self._room_changes is None:
            # Every write from here on goes through this store: the caches know all
            # changes after the position stored now.
            self._room_changes = StreamChangeCache(stream.current)
            self._membership_changes = StreamChangeCache(stream.current)
        return stream

    def _record_changes(
        self,
        batches: Sequence[RoomBatch],
        persisted: Sequence[Sequence[PersistedEvent]],
        visible: int,
    ) -> None:
        rooms, memberships = self._room_changes, self._membership_changes
        assert rooms is not None and memberships is not None
        allocated = [
            result.stream_ordering
            for results in persisted
            for result in results
            if result.stream_ordering is not None and result.stream_ordering > 0
        ]
        # A current-state change with no position of its own (outliers only) is
        # recorded past every visible position, so readers always see it as new.
        write_position = max(allocated, default=visible + 1)
        for batch, results in zip(batches, persisted, strict=True):
            for item, result in zip(batch.events, results, strict=True):
                position = result.stream_ordering
                if position is None or position < 0:
                    # Outliers, and backfilled history: never news to /sync.
                    continue
                rooms.record(batch.room_nid, position)
                event = item.event
                if event.type == "m.room.member" and event.state_key is not None:
                    memberships.record(event.state_key, position)
            # State resolution can move a membership without a new event of its own.
            if batch.current_state is not None:
                for event_type, state_key in batch.current_state.changes:
                    if event_type == "m.room.member":
                        memberships.record(state_key, write_position)

    async def rooms_changed_since(
        self, room_nids: Collection[int], position: int
    ) -> set[int] | None:
        """Those of ``room_nids`` with events stored after ``position`` (visible or
        not), from memory; None when the cache cannot tell (ask the database)."""
        await self._stream_positions()
        assert self._room_changes is not None
        return self._room_changes.changed_since(room_nids, position)

    async def membership_changed_since(self, user_id: str, position: int) -> bool | None:
        """Whether ``user_id`` has membership events stored after ``position``, from
        memory; None when the cache cannot tell."""
        await self._stream_positions()
        assert self._membership_changes is not None
        return self._membership_changes.has_changed_since(user_id, position)

    async def _highest_stored(self) -> int:
        rows = await self._db.execute(
            "get_max_stream_ordering", "SELECT COALESCE(MAX(stream_ordering), 0) FROM events"
        )
        return int(rows[0][0])
