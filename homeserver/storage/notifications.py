"""What ``GET /notifications`` and the email digest read: a user's rooms' events
newest first, their read marks, and their own latest event per thread.  SQL only.

Owns no table: reads ``rooms``, ``events``, ``event_relations`` (storage.events) and
``receipts`` (storage.receipts, through storage.unread's read-mark query).  Nothing
is stored per member per message (DESIGN.md "Speed by design"): the list is computed
when asked from index range scans on ``events (room_nid, stream_ordering)``, each
with its own small ``LIMIT``, in a ``UNION ALL`` per batch of rooms.

spec: client-server-api/modules/push.md (``GET /notifications``)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.state import chunks
from homeserver.storage.transaction import Transaction
from homeserver.storage.unread import read_marks_txn

#: Rooms per statement: each is one sub-select of the UNION ALL (SQLite allows 500).
_ROOMS_PER_QUERY = 50
_VISIBLE = "outlier = ? AND soft_failed = ? AND rejected_reason IS NULL"


@attrs.frozen
class RoomEvent:
    room_nid: int
    stream_ordering: int
    event_id: str
    sender: str


class NotificationStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def rooms(self, room_nids: Collection[int]) -> dict[int, tuple[str, int | None]]:
        """room NID -> (room version, current state group), in one query per 500 rooms."""
        found: dict[int, tuple[str, int | None]] = {}
        for part in chunks(sorted(room_nids), 500):
            rows = await self._db.execute_read(
                "notifications_rooms",
                "SELECT room_nid, room_version, current_state_group FROM rooms"
                f" WHERE room_nid IN ({','.join('?' * len(part))})",
                *part,
            )
            for room_nid, version, group in rows:
                found[int(room_nid)] = (str(version), None if group is None else int(group))
        return found

    async def events_before(
        self, windows: Mapping[int, tuple[int, int, int]]
    ) -> dict[int, list[RoomEvent]]:
        """room NID -> its visible events with ``low < stream_ordering <= high``, newest
        first, at most ``limit`` of them (``windows[room_nid] = (low, high, limit)``;
        a room that got ``limit`` may have more)."""
        result: dict[int, list[RoomEvent]] = {nid: [] for nid in windows}
        for part in chunks(sorted(windows), _ROOMS_PER_QUERY):
            found = await self._db.run_read(
                "notifications_events_before",
                _events_before_txn,
                [(nid, *windows[nid]) for nid in part],
            )
            for event in found:
                result[event.room_nid].append(event)
        for events in result.values():
            events.sort(key=lambda event: event.stream_ordering, reverse=True)
        return result

    async def read_marks(
        self, user_id: str, room_nids: Collection[int], receipt_types: Collection[str]
    ) -> dict[int, dict[str, int]]:
        """room NID -> thread ID (``unthreaded`` for unthreaded receipts) -> the newest
        stream position the user's receipts of ``receipt_types`` cover there: the
        unread counter's read-mark query (storage.unread)."""
        marks: dict[int, dict[str, int]] = {}
        for part in chunks(sorted(room_nids), _ROOMS_PER_QUERY):
            marks.update(
                await self._db.run_read(
                    "notifications_read_marks", read_marks_txn, user_id, part, receipt_types
                )
            )
        return marks

    async def own_latest(
        self, user_id: str, room_nids: Collection[int]
    ) -> dict[tuple[int, str | None], int]:
        """(room NID, thread root or None for the main timeline) -> the stream position
        of the user's newest visible event there (sending marks a thread read)."""
        latest: dict[tuple[int, str | None], int] = {}
        for part in chunks(sorted(room_nids), _ROOMS_PER_QUERY):
            rows = await self._db.execute_read(
                "notifications_own_latest",
                "SELECT e.room_nid, r.relates_to_id, MAX(e.stream_ordering) FROM events e"
                " LEFT JOIN event_relations r ON r.event_nid = e.event_nid"
                " AND r.rel_type = 'm.thread'"
                f" WHERE e.sender = ? AND e.room_nid IN ({','.join('?' * len(part))})"
                " AND e.outlier = ? AND e.soft_failed = ? AND e.rejected_reason IS NULL"
                " AND e.stream_ordering IS NOT NULL GROUP BY e.room_nid, r.relates_to_id",
                user_id,
                *part,
                False,
                False,
            )
            for room_nid, root, position in rows:
                latest[(int(room_nid), None if root is None else str(root))] = int(position)
        return latest


def _events_before_txn(
    txn: Transaction, windows: Sequence[tuple[int, int, int, int]]
) -> list[RoomEvent]:
    selects = []
    args: list[Any] = []
    for index, (nid, low, high, limit) in enumerate(windows):
        selects.append(
            "SELECT * FROM (SELECT room_nid, stream_ordering, event_id, sender FROM events"
            f" WHERE room_nid = ? AND stream_ordering > ? AND stream_ordering <= ? AND {_VISIBLE}"
            f" ORDER BY stream_ordering DESC LIMIT ?) AS s{index}"
        )
        args.extend((nid, low, high, False, False, limit))
    txn.execute(" UNION ALL ".join(selects), args)
    return [
        RoomEvent(int(room_nid), int(position), str(event_id), str(sender))
        for room_nid, position, event_id, sender in txn.fetchall()
    ]
