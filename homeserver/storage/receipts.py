"""Read receipts: SQL only.

Owns ``receipts`` (schema/0010_receipts.py): the latest receipt per (room, user,
receipt type, thread), each change numbered in the ``receipts`` stream.  Reads
``rooms`` and ``events`` (owned by storage.events) to resolve room and event IDs.
Positions come from the ``receipts_stream`` sequence inside the writing transaction;
the stream's tracker (streams/positions.py) says up to where they are all committed.

spec: client-server-api/_index.md#receipts
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence

import attrs

from homeserver.storage.database import Database
from homeserver.storage.state import chunks
from homeserver.storage.transaction import Transaction
from homeserver.streams.positions import LazyStreamPositions, PositionsWrite

#: ``thread_id`` stored for an unthreaded receipt.
UNTHREADED = ""
#: The sequence behind the receipts stream.
STREAM_SEQUENCE = "receipts_stream"


@attrs.frozen
class Receipt:
    room_id: str
    user_id: str
    receipt_type: str
    #: None for an unthreaded receipt; ``main`` or a thread root's event ID otherwise.
    thread_id: str | None
    event_id: str
    ts: int
    stream_id: int


class Outcome(enum.Enum):
    #: The receipt moved forward and got a new stream position.
    STORED = "stored"
    #: The receipt points at or before the one already stored: nothing changed.
    NOT_NEWER = "not_newer"
    #: The event is not a (non-outlier) event of that room.
    UNKNOWN_EVENT = "unknown_event"


@attrs.frozen
class SetResult:
    outcome: Outcome
    #: The new stream position when ``outcome`` is STORED.
    stream_id: int | None = None
    #: The receipted event's sender when ``outcome`` is STORED.
    event_sender: str | None = None


class ReceiptStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._stream = LazyStreamPositions(STREAM_SEQUENCE, self._highest_stored)

    async def set_receipt(
        self,
        room_id: str,
        user_id: str,
        receipt_type: str,
        thread_id: str | None,
        event_id: str,
        ts: int,
    ) -> SetResult:
        """Move the user's receipt to ``event_id`` unless it is already there or later.

        "Later" is by the events' stream positions: a receipt is an "up to and
        including" marker, so it never moves backwards.  Returns once committed; the
        new position may not be visible yet (see :meth:`wait_until_visible`).
        """
        stream = await self._stream.get()
        with stream.writing() as write:
            return await self._db.run_interaction(
                "set_receipt",
                _set_receipt_txn,
                write,
                room_id,
                user_id,
                receipt_type,
                UNTHREADED if thread_id is None else thread_id,
                event_id,
                ts,
            )

    async def set_delivered(
        self,
        deliveries: Sequence[Delivery],
        receipt_type: str,
        ts: int,
        *,
        max_joined_members: int,
    ) -> list[tuple[int, str]]:
        """Move each delivery's receipt of ``receipt_type`` forward, in one transaction;
        returns (stream position, sender of the event) of each receipt that moved.

        Skipped: users no longer joined, rooms with more than ``max_joined_members``
        joined members, receipts already at or after the event.
        """
        if not deliveries:
            return []
        stream = await self._stream.get()
        with stream.writing() as write:
            return await self._db.run_interaction(
                "set_delivered",
                _set_delivered_txn,
                write,
                deliveries,
                receipt_type,
                ts,
                max_joined_members,
            )

    async def wait_until_visible(self, position: int) -> None:
        """Wait until every position up to ``position`` is committed or abandoned:
        only then may it be announced."""
        await (await self._stream.get()).wait_until_visible(position)

    async def get_receipts(
        self,
        room_ids: Collection[str],
        from_position: int,
        to_position: int,
        *,
        for_user: str,
        private_type: str,
        others_only_type: str | None = None,
    ) -> list[Receipt]:
        """Receipts in ``room_ids`` whose latest change is in (from, to].

        Receipts of ``private_type`` are returned only when they are ``for_user``'s,
        those of ``others_only_type`` only when they are not.
        """

        others_only = (
            "" if others_only_type is None else " AND (c.receipt_type <> ? OR c.user_id <> ?)"
        )
        others_args = () if others_only_type is None else (others_only_type, for_user)

        def read(txn: Transaction) -> list[Receipt]:
            found: list[Receipt] = []
            for part in chunks(sorted(room_ids)):
                marks = ",".join("?" * len(part))
                txn.execute(
                    "SELECT r.room_id, c.user_id, c.receipt_type, c.thread_id, c.event_id,"
                    " c.ts, c.stream_id FROM rooms r JOIN receipts c ON c.room_nid = r.room_nid"
                    f" WHERE r.room_id IN ({marks}) AND c.stream_id > ? AND c.stream_id <= ?"
                    " AND (c.receipt_type <> ? OR c.user_id = ?)"
                    f"{others_only} ORDER BY c.stream_id",
                    (*part, from_position, to_position, private_type, for_user, *others_args),
                )
                found.extend(
                    Receipt(
                        room_id,
                        user_id,
                        receipt_type,
                        None if thread_id == UNTHREADED else thread_id,
                        event_id,
                        int(ts),
                        int(stream_id),
                    )
                    for room_id, user_id, receipt_type, thread_id, event_id, ts, stream_id in (
                        txn.fetchall()
                    )
                )
            return found

        return await self._db.run_read("get_receipts", read)

    async def get_max_position(self) -> int:
        """The position up to which every change of the receipts stream is committed
        (or abandoned): readers never look past it."""
        return (await self._stream.get()).current

    async def _highest_stored(self) -> int:
        # Rows are updated in place, and the latest change carries the highest position.
        rows = await self._db.execute(
            "receipts_max_position", "SELECT COALESCE(MAX(stream_id), 0) FROM receipts"
        )
        return int(rows[0][0])


def _set_receipt_txn(
    txn: Transaction,
    write: PositionsWrite,
    room_id: str,
    user_id: str,
    receipt_type: str,
    thread_id: str,
    event_id: str,
    ts: int,
) -> SetResult:
    txn.execute(
        "SELECT e.room_nid, e.stream_ordering, e.sender FROM events e"
        " JOIN rooms r ON r.room_nid = e.room_nid"
        " WHERE e.event_id = ? AND r.room_id = ? AND e.stream_ordering IS NOT NULL",
        (event_id, room_id),
    )
    row = txn.fetchone()
    if row is None:
        return SetResult(Outcome.UNKNOWN_EVENT)
    room_nid, event_stream_ordering, sender = int(row[0]), int(row[1]), str(row[2])
    txn.execute(
        "SELECT event_stream_ordering FROM receipts"
        " WHERE room_nid = ? AND user_id = ? AND receipt_type = ? AND thread_id = ?",
        (room_nid, user_id, receipt_type, thread_id),
    )
    existing = txn.fetchone()
    if existing is not None and existing[0] is not None and existing[0] >= event_stream_ordering:
        return SetResult(Outcome.NOT_NEWER)
    stream_id = write.allocate(txn)
    txn.execute(
        "INSERT INTO receipts (room_nid, user_id, receipt_type, thread_id, event_id,"
        " event_stream_ordering, ts, stream_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (room_nid, user_id, receipt_type, thread_id) DO UPDATE SET"
        " event_id = excluded.event_id, event_stream_ordering = excluded.event_stream_ordering,"
        " ts = excluded.ts, stream_id = excluded.stream_id",
        (
            room_nid,
            user_id,
            receipt_type,
            thread_id,
            event_id,
            event_stream_ordering,
            ts,
            stream_id,
        ),
    )
    return SetResult(Outcome.STORED, stream_id, sender)


@attrs.frozen
class Delivery:
    """One device of ``user_id`` received ``room_id``'s events up to ``event_id``."""

    room_id: str
    user_id: str
    event_id: str


def _set_delivered_txn(
    txn: Transaction,
    write: PositionsWrite,
    deliveries: Sequence[Delivery],
    receipt_type: str,
    ts: int,
    max_joined_members: int,
) -> list[tuple[int, str]]:
    stored: list[tuple[int, str]] = []
    small_rooms: dict[str, bool] = {}
    for delivery in deliveries:
        small = small_rooms.get(delivery.room_id)
        if small is None:
            # Counting stops past the limit, so a huge room costs no more than a small one.
            txn.execute(
                "SELECT COUNT(*) FROM (SELECT 1 FROM room_memberships m"
                " JOIN rooms r ON r.room_nid = m.room_nid"
                " WHERE r.room_id = ? AND m.membership = 'join' LIMIT ?) AS joined",
                (delivery.room_id, max_joined_members + 1),
            )
            row = txn.fetchone()
            small = small_rooms[delivery.room_id] = row is not None and row[0] <= max_joined_members
        if not small:
            continue
        txn.execute(
            "SELECT 1 FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid"
            " WHERE r.room_id = ? AND m.user_id = ? AND m.membership = 'join'",
            (delivery.room_id, delivery.user_id),
        )
        if txn.fetchone() is None:
            continue  # left (or was kicked) since: never a receipt for a non-member
        result = _set_receipt_txn(
            txn,
            write,
            delivery.room_id,
            delivery.user_id,
            receipt_type,
            UNTHREADED,
            delivery.event_id,
            ts,
        )
        if result.outcome is Outcome.STORED:
            assert result.stream_id is not None and result.event_sender is not None
            stored.append((result.stream_id, result.event_sender))
    return stored
