"""Room state as immutable state groups: snapshots plus deltas.  SQL only.

A state group is a whole room state.  It is stored either as a snapshot (every
entry) or as a delta on an earlier group (only the entries that differ, with
removals as NULL entries).  A chain is cut by a new snapshot once the delta entries
written along it outweigh its snapshot (or it grows past ``MAX_CHAIN_LENGTH``
groups), so reading a group touches at most about twice its state's rows, and a
snapshot costs at most one extra row per delta row written: storage grows with the
number of state *changes*, not changes × room size (a 1,000-member room is not
rewritten every few dozen membership changes).  ``(type, state_key)`` pairs are
interned as integers.  Groups never change once written, so their resolved contents
are cached freely; the cache is bounded by entries held, not by groups.

Owns the ``state_keys``, ``state_groups``, ``state_group_entries`` and
``partial_state_history_groups`` tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from homeserver.events.event import StateKey
from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction
from homeserver.util.caches import LruCache

#: A delta chain is cut by a snapshot once its delta entries exceed its snapshot's
#: size, or this many (small rooms: a snapshot there is a few rows anyway).
MIN_SNAPSHOT_ROWS = 50
#: Groups in one chain at most, bounding the recursive read however small the deltas.
MAX_CHAIN_LENGTH = 1000
#: State entries the group cache holds at most, across all groups.
DEFAULT_CACHE_ENTRIES = 200_000
#: Rows per ``IN (...)`` list, well inside SQLite's bound-variable limit.
_CHUNK = 500

T = TypeVar("T")

#: ``chain``: a group (the parameter) and every group down its delta chain to its
#: snapshot, with their chain lengths (snapshots 0, so ascending is oldest first).
_CHAIN_OF_GROUP = (
    "WITH RECURSIVE chain (state_group, prev_state_group, chain_length) AS ("
    " SELECT state_group, prev_state_group, chain_length FROM state_groups"
    " WHERE state_group = ?"
    " UNION ALL"
    " SELECT g.state_group, g.prev_state_group, g.chain_length"
    " FROM state_groups g JOIN chain c ON g.state_group = c.prev_state_group)"
)


def chunks(items: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class UnknownEventsError(Exception):
    """A state map referred to events that are not stored."""

    def __init__(self, event_ids: Iterable[str]) -> None:
        self.event_ids = frozenset(event_ids)
        super().__init__(f"unknown events: {sorted(self.event_ids)[:5]}")


class StateStore:
    def __init__(self, database: Database, *, cache_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        self._db = database
        # Weighted by size: one 10,000-member room's state weighs what 10,000 small
        # rooms' single entries do.
        self._groups: LruCache[int, dict[StateKey, str]] = LruCache(
            cache_entries, weigh=lambda state: max(len(state), 1)
        )
        # (type, state_key) -> nid never changes once assigned.
        self._key_nids: dict[StateKey, int] = {}
        #: Bumped when written groups change (a partial-state room's completion): a
        #: read that overlapped it is not cached, lest it put back the old contents.
        self._generation = 0

    async def get_state_ids(self, state_group: int) -> Mapping[StateKey, str]:
        """The state of ``state_group`` as ``{(type, state_key): event_id}``.

        The returned dict is shared with the cache: do not modify it.
        """
        cached = self._groups.get(state_group)
        if cached is not None:
            return cached
        generation = self._generation
        state = await self._db.run_read("get_state_ids", self.read_group_txn, state_group)
        if generation == self._generation:
            self._groups.set(state_group, state)
        return state

    async def get_state_for_keys(
        self, state_group: int, keys: Sequence[StateKey]
    ) -> dict[StateKey, str]:
        """Only ``keys`` of ``state_group``'s state (those it has).

        From the cache when the whole group is there; otherwise only those keys'
        entries are read along the delta chain (the newest entry of each wins), so a
        question about two keys of a 1,000-member room's state reads a few rows, not
        the whole state.
        """
        cached = self._groups.get(state_group)
        if cached is not None:
            return {key: cached[key] for key in keys if key in cached}
        return await self._db.run_read(
            "get_state_for_keys", self.read_keys_txn, state_group, list(dict.fromkeys(keys))
        )

    def read_keys_txn(
        self, txn: Transaction, state_group: int, keys: Sequence[StateKey]
    ) -> dict[StateKey, str]:
        nids = {}
        for key in keys:
            nid = self._key_nids.get(key)
            if nid is None:
                # A key never interned is in no state at all.
                nid = _stored_key_nid_txn(txn, key)
            if nid is not None:
                nids[nid] = key
        if not nids:
            return {}
        marks = ",".join("?" * len(nids))
        txn.execute(
            _CHAIN_OF_GROUP + " SELECT e.state_key_nid, ev.event_id"
            " FROM chain c"
            " JOIN state_group_entries e ON e.state_group = c.state_group"
            f" AND e.state_key_nid IN ({marks})"
            " LEFT JOIN events ev ON ev.event_nid = e.event_nid"
            " ORDER BY c.chain_length",
            (state_group, *nids),
        )
        state: dict[StateKey, str] = {}
        # Oldest first: a later delta's entry (or removal) replaces an earlier one.
        for nid, event_id in txn.fetchall():
            key = nids[int(nid)]
            if event_id is None:
                state.pop(key, None)
            else:
                state[key] = event_id
        return state

    async def store_state_group(
        self,
        room_nid: int,
        state: Mapping[StateKey, str],
        *,
        base_group: int | None = None,
    ) -> int:
        """Store ``state`` as a new group (a delta on ``base_group`` where given)."""
        base_state = await self.get_state_ids(base_group) if base_group is not None else None
        group = await self._db.run_interaction(
            "store_state_group", self.store_group_txn, room_nid, state, base_group, base_state
        )
        self._groups.set(group, dict(state))
        return group

    # --- transaction functions, also used by EventStore within its transactions ------

    def read_group_txn(self, txn: Transaction, state_group: int) -> dict[StateKey, str]:
        # One round trip: walk the delta chain down to its snapshot and apply the
        # entries oldest first (snapshots have chain_length 0).
        txn.execute(
            _CHAIN_OF_GROUP + " SELECT k.type, k.state_key, ev.event_id"
            " FROM chain c"
            " JOIN state_group_entries e ON e.state_group = c.state_group"
            " JOIN state_keys k ON k.state_key_nid = e.state_key_nid"
            " LEFT JOIN events ev ON ev.event_nid = e.event_nid"
            " ORDER BY c.chain_length",
            (state_group,),
        )
        rows = txn.fetchall()
        if not rows:
            txn.execute("SELECT 1 FROM state_groups WHERE state_group = ?", (state_group,))
            if txn.fetchone() is None:
                raise KeyError(f"unknown state group {state_group}")
        state: dict[StateKey, str] = {}
        for event_type, state_key, event_id in rows:
            if event_id is None:
                state.pop((event_type, state_key), None)
            else:
                state[(event_type, state_key)] = event_id
        return state

    def store_group_txn(
        self,
        txn: Transaction,
        room_nid: int,
        state: Mapping[StateKey, str],
        base_group: int | None,
        base_state: Mapping[StateKey, str] | None,
    ) -> int:
        """Store the whole ``state``, as a delta on ``base_group`` when one is given."""
        if base_group is None or base_state is None:
            return self._insert_group_txn(txn, room_nid, None, 0, dict(state))
        changes: dict[StateKey, str | None] = {
            key: event_id for key, event_id in state.items() if base_state.get(key) != event_id
        }
        changes.update({key: None for key in base_state if key not in state})
        return self.store_delta_txn(txn, room_nid, base_group, changes)

    def store_delta_txn(
        self,
        txn: Transaction,
        room_nid: int,
        base_group: int,
        changes: Mapping[StateKey, str | None],
    ) -> int:
        """Store ``base_group``'s state with ``changes`` applied (None removes a key).

        Costs rows in proportion to the changes, except when the chain's deltas
        would outweigh its snapshot: then the whole state is written as a new one.
        """
        txn.execute(
            "SELECT chain_length, chain_rows, snapshot_rows FROM state_groups"
            " WHERE state_group = ?",
            (base_group,),
        )
        row = txn.fetchone()
        if row is None:
            raise KeyError(f"unknown state group {base_group}")
        chain_length = int(row[0]) + 1
        chain_rows = int(row[1]) + len(changes)
        snapshot_rows = int(row[2])
        if chain_length <= MAX_CHAIN_LENGTH and chain_rows <= max(snapshot_rows, MIN_SNAPSHOT_ROWS):
            return self._insert_group_txn(
                txn, room_nid, base_group, chain_length, changes, chain_rows, snapshot_rows
            )
        full: dict[StateKey, str | None] = dict(self.read_group_txn(txn, base_group))
        full.update(changes)
        snapshot = {key: event_id for key, event_id in full.items() if event_id is not None}
        return self._insert_group_txn(txn, room_nid, None, 0, snapshot)

    def _insert_group_txn(
        self,
        txn: Transaction,
        room_nid: int,
        base_group: int | None,
        chain_length: int,
        entries: Mapping[StateKey, str | None],
        chain_rows: int = 0,
        snapshot_rows: int | None = None,
    ) -> int:
        """Insert a group: a snapshot (no base; ``snapshot_rows`` defaults to its size)
        or a delta carrying its chain's running totals."""
        key_nids = self.key_nids_txn(txn, list(entries))
        wanted = [event_id for event_id in entries.values() if event_id is not None]
        event_nids = event_nids_for_ids_txn(txn, wanted)
        missing = set(wanted) - set(event_nids)
        if missing:
            raise UnknownEventsError(missing)
        group = txn.engine.next_id(txn, "state_group_ids")
        txn.execute(
            "INSERT INTO state_groups (state_group, room_nid, prev_state_group, chain_length,"
            " chain_rows, snapshot_rows) VALUES (?, ?, ?, ?, ?, ?)",
            (
                group,
                room_nid,
                base_group,
                chain_length,
                chain_rows,
                len(entries) if snapshot_rows is None else snapshot_rows,
            ),
        )
        txn.executemany(
            "INSERT INTO state_group_entries (state_group, state_key_nid, event_nid)"
            " VALUES (?, ?, ?)",
            [
                (group, key_nids[key], None if event_id is None else event_nids[event_id])
                for key, event_id in entries.items()
            ],
        )
        return group

    def cached_state_after(
        self, base_group: int, changes: Mapping[StateKey, str | None]
    ) -> dict[StateKey, str] | None:
        """``base_group``'s state with ``changes`` applied, if the base is cached."""
        base = self._groups.get(base_group)
        if base is None:
            return None
        state = dict(base)
        for key, event_id in changes.items():
            if event_id is None:
                state.pop(key, None)
            else:
                state[key] = event_id
        return state

    def cache_group(self, state_group: int, state: Mapping[StateKey, str]) -> None:
        """Remember a group's contents just written by a caller's transaction."""
        self._groups.set(state_group, dict(state))

    def forget_groups(self, state_groups: Iterable[int]) -> None:
        """Drop cached contents of groups whose snapshot a partial-state room's
        completion changed (:meth:`complete_partial_groups_txn`)."""
        self._generation += 1
        for group in state_groups:
            self._groups.invalidate(group)

    def complete_partial_groups_txn(
        self,
        txn: Transaction,
        room_nid: int,
        join_group: int,
        missing: Mapping[StateKey, str],
    ) -> list[int]:
        """Add ``missing`` to every snapshot of the room from the one ``join_group``
        is built on onwards, where the snapshot lacks the key, except the full states
        of history backfilled meanwhile (:meth:`mark_history_groups_txn`): the one
        exception to groups never changing, for a room joined with partial state
        (see ``storage.partial_state``).  Every later group is a delta on one of
        these snapshots, so each now has the full state.  Returns the IDs of every
        group whose contents may have changed (for :meth:`forget_groups`)."""
        txn.execute(
            _CHAIN_OF_GROUP + " SELECT state_group FROM chain WHERE prev_state_group IS NULL",
            (join_group,),
        )
        row = txn.fetchone()
        if row is None:
            raise KeyError(f"unknown state group {join_group}")
        first = int(row[0])
        txn.execute(
            "SELECT state_group, prev_state_group FROM state_groups"
            " WHERE room_nid = ? AND state_group >= ?",
            (room_nid, first),
        )
        groups = [(int(group), prev) for group, prev in txn.fetchall()]
        txn.execute(
            "SELECT state_group FROM partial_state_history_groups WHERE room_nid = ?",
            (room_nid,),
        )
        history = {int(group) for (group,) in txn.fetchall()}
        txn.execute("DELETE FROM partial_state_history_groups WHERE room_nid = ?", (room_nid,))
        if not missing:
            return []
        key_nids = self.key_nids_txn(txn, list(missing))
        event_nids = event_nids_for_ids_txn(txn, list(missing.values()))
        unknown = set(missing.values()) - set(event_nids)
        if unknown:
            raise UnknownEventsError(unknown)
        for snapshot in (group for group, prev in groups if prev is None and group not in history):
            txn.execute(
                "SELECT state_key_nid FROM state_group_entries WHERE state_group = ?",
                (snapshot,),
            )
            held = {int(nid) for (nid,) in txn.fetchall()}
            rows = [
                (snapshot, key_nids[key], event_nids[event_id])
                for key, event_id in missing.items()
                if key_nids[key] not in held
            ]
            txn.executemany(
                "INSERT INTO state_group_entries (state_group, state_key_nid, event_nid)"
                " VALUES (?, ?, ?)",
                rows,
            )
            txn.execute(
                "UPDATE state_groups SET snapshot_rows = snapshot_rows + ? WHERE state_group = ?",
                (len(rows), snapshot),
            )
        return [group for group, _prev in groups]

    def mark_history_groups_txn(
        self, txn: Transaction, room_nid: int, groups: Sequence[int]
    ) -> None:
        """Record ``groups`` as the states of history backfilled while the room's
        state is partial: full states, which its completion leaves alone."""
        txn.executemany(
            "INSERT INTO partial_state_history_groups (state_group, room_nid) VALUES (?, ?)"
            " ON CONFLICT DO NOTHING",
            [(group, room_nid) for group in groups],
        )

    def key_nids_txn(self, txn: Transaction, keys: Sequence[StateKey]) -> dict[StateKey, int]:
        """Interned ids for ``keys``, creating the missing ones."""
        result = {key: self._key_nids[key] for key in keys if key in self._key_nids}
        unknown = [key for key in keys if key not in result]
        for key in unknown:
            stored = _stored_key_nid_txn(txn, key)
            if stored is None:
                nid = txn.engine.next_id(txn, "state_key_nids")
                # Another transaction may be interning the same key right now: the
                # conflict makes PostgreSQL fail this one as a serialization failure,
                # which the database layer retries (and the retry finds the row).
                txn.execute(
                    "INSERT INTO state_keys (state_key_nid, type, state_key) VALUES (?, ?, ?)"
                    " ON CONFLICT (type, state_key) DO NOTHING",
                    (nid, key[0], key[1]),
                )
                if txn.rowcount == 0:
                    existing = _stored_key_nid_txn(txn, key)
                    assert existing is not None
                    nid = existing
            else:
                nid = stored
            result[key] = nid
        # Only cache after commit: a rolled-back insert must not leave a phantom nid.
        fresh = {key: result[key] for key in unknown}
        txn.call_after_commit(lambda: self._key_nids.update(fresh))
        return result


def _stored_key_nid_txn(txn: Transaction, key: StateKey) -> int | None:
    txn.execute("SELECT state_key_nid FROM state_keys WHERE type = ? AND state_key = ?", key)
    row = txn.fetchone()
    return None if row is None else int(row[0])


def event_nids_for_ids_txn(txn: Transaction, event_ids: Sequence[str]) -> dict[str, int]:
    nids: dict[str, int] = {}
    for part in chunks(list(dict.fromkeys(event_ids))):
        marks = ",".join("?" * len(part))
        txn.execute(f"SELECT event_id, event_nid FROM events WHERE event_id IN ({marks})", part)
        nids.update({event_id: int(nid) for event_id, nid in txn.fetchall()})
    return nids
