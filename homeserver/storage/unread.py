"""What unread counts are computed from, and where they were left.  SQL only.

Reads ``receipts`` (storage.receipts) for the user's read marks and ``rooms``,
``room_memberships`` and ``events`` (storage.events) for when they joined and what
was sent since.  Owns ``unread_checkpoints`` (schema 0015): per (user, room, thread)
the counts as of a stream position, written only when that user's ``/sync`` asks
for counts — never a row per member per message (DESIGN.md "Speed by design").  So
a computation reads only the events after the checkpoint (or after a read mark that
moved), in ascending batches: one ``UNION ALL`` of index range scans on
``events (room_nid, stream_ordering)`` per batch of rooms.

spec: client-server-api/_index.md#receiving-notifications
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.receipts import UNTHREADED
from homeserver.storage.state import chunks
from homeserver.storage.transaction import Transaction

#: Rooms per statement: each is one sub-select of the UNION ALL (SQLite allows 500).
_ROOMS_PER_QUERY = 50


@attrs.frozen
class ScannedEvent:
    stream_ordering: int
    event_id: str
    sender: str


@attrs.frozen
class ThreadCheckpoint:
    """One thread's counts in a checkpoint: its events after
    ``max(base, receipt_position)`` up to the checkpoint's position."""

    #: The threaded receipt position they were counted from (0: none).
    receipt_position: int
    notification_count: int = 0
    highlight_count: int = 0


@attrs.frozen
class Checkpoint:
    """A room's unread counts for one user as of ``position``."""

    #: The read mark counted from: ``max(joined_at, unthreaded_mark)`` back then.
    base: int
    #: Every visible event up to this stream position is counted.
    position: int
    #: Fingerprint of the push rules the events were evaluated with.
    rules_hash: str
    #: Thread (``main`` or a thread root's event ID) -> its counts; a thread without
    #: a row has no threaded receipt and nothing counted.
    threads: Mapping[str, ThreadCheckpoint] = attrs.field(factory=dict)


@attrs.frozen
class RoomReadState:
    """One joined room as seen by one user: where they have read to, and the counts
    left by their last computation."""

    room_id: str
    room_nid: int
    room_version: str
    current_state_group: int | None
    #: Stream position of the user's join: nothing before it counts.
    joined_at: int
    #: Newest position covered by an unthreaded receipt (0 if none).
    unthreaded_mark: int
    #: Thread (``main`` or a thread root's event ID) -> newest position its threaded
    #: receipts cover.
    thread_marks: dict[str, int]
    checkpoint: Checkpoint | None = None


class UnreadStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def read_states(
        self, user_id: str, room_ids: Collection[str], receipt_types: Collection[str]
    ) -> dict[str, RoomReadState]:
        """The read state of each room in ``room_ids`` that ``user_id`` is joined to."""
        ordered = sorted(set(room_ids))
        result: dict[str, RoomReadState] = {}
        for part in chunks(ordered, _ROOMS_PER_QUERY):
            result.update(
                await self._db.run_read(
                    "unread_read_states", _read_states_txn, user_id, part, sorted(receipt_types)
                )
            )
        return result

    async def events_after(
        self, ranges: Mapping[int, int], up_to: int, limit: int
    ) -> dict[int, list[ScannedEvent]]:
        """room NID -> its visible events (not outliers, rejected or soft-failed) with
        ``ranges[room_nid] < stream_ordering <= up_to``, oldest first, at most
        ``limit`` per room (a room that got ``limit`` may have more)."""
        result: dict[int, list[ScannedEvent]] = {nid: [] for nid in ranges}
        for part in chunks(sorted(ranges), _ROOMS_PER_QUERY):
            found = await self._db.run_read(
                "unread_events_after",
                _events_after_txn,
                [(nid, ranges[nid]) for nid in part],
                up_to,
                limit,
            )
            for nid, events in found.items():
                result[nid].extend(events)
        return result

    async def joined_member_counts(self, room_nids: Collection[int]) -> dict[int, int]:
        """room NID -> members joined now (``room_member_count``)."""
        result: dict[int, int] = dict.fromkeys(room_nids, 0)
        for part in chunks(sorted(result), _ROOMS_PER_QUERY):
            result.update(await self._db.run_read("unread_member_counts", _member_counts_txn, part))
        return result

    async def save_checkpoints(self, user_id: str, checkpoints: Mapping[int, Checkpoint]) -> None:
        """Replace ``user_id``'s checkpoints of these rooms (room NID -> checkpoint)."""
        for part in chunks(sorted(checkpoints), _ROOMS_PER_QUERY):
            # Checkpoints only save recounting: losing one in a crash costs work,
            # never a wrong count, so /sync does not wait for the disk for them.
            await self._db.run_unsynced(
                "unread_save_checkpoints",
                _save_checkpoints_txn,
                user_id,
                {nid: checkpoints[nid] for nid in part},
            )


def _read_states_txn(
    txn: Transaction, user_id: str, room_ids: Sequence[str], receipt_types: Sequence[str]
) -> dict[str, RoomReadState]:
    marks = ",".join("?" * len(room_ids))
    txn.execute(
        "SELECT r.room_id, r.room_nid, r.room_version, r.current_state_group, e.stream_ordering"
        " FROM rooms r JOIN room_memberships m ON m.room_nid = r.room_nid AND m.user_id = ?"
        " JOIN events e ON e.event_nid = m.event_nid"
        f" WHERE m.membership = ? AND r.room_id IN ({marks})",
        (user_id, "join", *room_ids),
    )
    rooms: dict[int, dict[str, Any]] = {}
    for room_id, room_nid, version, group, joined_at in txn.fetchall():
        rooms[int(room_nid)] = {
            "room_id": room_id,
            "room_nid": int(room_nid),
            "room_version": version,
            "current_state_group": None if group is None else int(group),
            "joined_at": int(joined_at or 0),
            "unthreaded_mark": 0,
            "thread_marks": {},
        }
    if not rooms:
        return {}
    nids = sorted(rooms)
    nid_marks = ",".join("?" * len(nids))
    for nid, threads in read_marks_txn(txn, user_id, nids, receipt_types).items():
        room = rooms[nid]
        for thread_id, mark in threads.items():
            if thread_id == UNTHREADED:
                room["unthreaded_mark"] = mark
            else:
                room["thread_marks"][thread_id] = mark
    txn.execute(
        "SELECT room_nid, thread_id, base_position, stream_position, rules_hash,"
        " receipt_position, notification_count, highlight_count FROM unread_checkpoints"
        f" WHERE user_id = ? AND room_nid IN ({nid_marks})",
        (user_id, *nids),
    )
    found: dict[int, list[tuple[Any, ...]]] = {}
    for row in txn.fetchall():
        found.setdefault(int(row[0]), []).append(row)
    states = {}
    for nid, room in rooms.items():
        states[room["room_id"]] = RoomReadState(**room, checkpoint=_checkpoint(found.get(nid)))
    return states


def read_marks_txn(
    txn: Transaction, user_id: str, room_nids: Sequence[int], receipt_types: Collection[str]
) -> dict[int, dict[str, int]]:
    """room NID -> thread ID (:data:`UNTHREADED` for unthreaded receipts) -> the newest
    stream position ``user_id``'s receipts of ``receipt_types`` cover there (shared
    with storage.notifications: both read the same read mark)."""
    if not room_nids:
        return {}
    nid_marks = ",".join("?" * len(room_nids))
    type_marks = ",".join("?" * len(receipt_types))
    txn.execute(
        "SELECT room_nid, thread_id, MAX(event_stream_ordering) FROM receipts"
        f" WHERE user_id = ? AND room_nid IN ({nid_marks}) AND receipt_type IN ({type_marks})"
        " AND event_stream_ordering IS NOT NULL GROUP BY room_nid, thread_id",
        (user_id, *room_nids, *sorted(receipt_types)),
    )
    marks: dict[int, dict[str, int]] = {}
    for room_nid, thread_id, mark in txn.fetchall():
        marks.setdefault(int(room_nid), {})[str(thread_id)] = int(mark)
    return marks


def _checkpoint(rows: list[tuple[Any, ...]] | None) -> Checkpoint | None:
    if not rows:
        return None
    room_wide = {(int(row[2]), int(row[3]), row[4]) for row in rows}
    if len(room_wide) != 1:
        # Rows of two overlapping saves: not one consistent checkpoint, so none.
        return None
    [(base, position, rules_hash)] = room_wide
    threads = {row[1]: ThreadCheckpoint(int(row[5]), int(row[6]), int(row[7])) for row in rows}
    return Checkpoint(base, position, rules_hash, threads)


def _events_after_txn(
    txn: Transaction, ranges: Sequence[tuple[int, int]], up_to: int, limit: int
) -> dict[int, list[ScannedEvent]]:
    selects = []
    args: list[Any] = []
    for index, (nid, after) in enumerate(ranges):
        selects.append(
            "SELECT * FROM (SELECT room_nid, stream_ordering, event_id, sender FROM events"
            " WHERE room_nid = ? AND stream_ordering > ? AND stream_ordering <= ?"
            " AND outlier = ? AND soft_failed = ? AND rejected_reason IS NULL"
            f" ORDER BY stream_ordering ASC LIMIT ?) AS s{index}"
        )
        args.extend((nid, after, up_to, False, False, limit))
    txn.execute(" UNION ALL ".join(selects), args)
    result: dict[int, list[ScannedEvent]] = {}
    for room_nid, stream_ordering, event_id, sender in txn.fetchall():
        result.setdefault(int(room_nid), []).append(
            ScannedEvent(int(stream_ordering), event_id, sender)
        )
    for events in result.values():
        events.sort(key=lambda event: event.stream_ordering)
    return result


def _member_counts_txn(txn: Transaction, room_nids: Sequence[int]) -> dict[int, int]:
    marks = ",".join("?" * len(room_nids))
    txn.execute(
        "SELECT room_nid, COUNT(*) FROM room_memberships"
        f" WHERE membership = ? AND room_nid IN ({marks}) GROUP BY room_nid",
        ("join", *room_nids),
    )
    return {int(room_nid): int(count) for room_nid, count in txn.fetchall()}


def _save_checkpoints_txn(
    txn: Transaction, user_id: str, checkpoints: Mapping[int, Checkpoint]
) -> None:
    for nid, checkpoint in checkpoints.items():
        threads = sorted(checkpoint.threads)
        # Upsert rather than delete-and-insert: two /syncs of one user may save the
        # same room at once, and on PostgreSQL the second insert would then fail.
        for thread_id in threads:
            thread = checkpoint.threads[thread_id]
            txn.execute(
                "INSERT INTO unread_checkpoints (user_id, room_nid, thread_id, base_position,"
                " stream_position, rules_hash, receipt_position, notification_count,"
                " highlight_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, room_nid, thread_id) DO UPDATE SET"
                " base_position = excluded.base_position,"
                " stream_position = excluded.stream_position,"
                " rules_hash = excluded.rules_hash,"
                " receipt_position = excluded.receipt_position,"
                " notification_count = excluded.notification_count,"
                " highlight_count = excluded.highlight_count",
                (
                    user_id,
                    nid,
                    thread_id,
                    checkpoint.base,
                    checkpoint.position,
                    checkpoint.rules_hash,
                    thread.receipt_position,
                    thread.notification_count,
                    thread.highlight_count,
                ),
            )
        marks = ",".join("?" * len(threads))
        keep = f" AND thread_id NOT IN ({marks})" if threads else ""
        txn.execute(
            f"DELETE FROM unread_checkpoints WHERE user_id = ? AND room_nid = ?{keep}",
            (user_id, nid, *threads),
        )
