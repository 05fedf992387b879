"""What unread counts are computed from: read marks and the events after them.  SQL only.

Owns no table.  Reads ``receipts`` (storage.receipts) for the user's read marks and
``rooms``, ``room_memberships`` and ``events`` (storage.events) for when they joined
and what was sent since.  Nothing is written per message: counts are derived at read
time from stream positions (DESIGN.md "Speed by design"), with one transaction per
batch of rooms whose event scan is one ``UNION ALL`` of index range scans on
``events (room_nid, stream_ordering)``, newest first, capped per room.

spec: client-server-api/_index.md#receiving-notifications
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
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
class RoomReadState:
    """One joined room as seen by one user: where they have read to, and what follows."""

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
    #: Visible events after ``max(joined_at, unthreaded_mark)``, newest first, at most
    #: the scan limit.
    events: list[ScannedEvent]
    #: Joined members now (counted only when ``events`` is not empty, else 0).
    joined_members: int = 0


class UnreadStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def read_states(
        self,
        user_id: str,
        room_ids: Collection[str],
        receipt_types: Collection[str],
        *,
        scan_limit: int,
    ) -> dict[str, RoomReadState]:
        """The read state of each room in ``room_ids`` that ``user_id`` is joined to."""
        ordered = sorted(set(room_ids))
        result: dict[str, RoomReadState] = {}
        for part in chunks(ordered, _ROOMS_PER_QUERY):
            result.update(
                await self._db.run_interaction(
                    "unread_read_states",
                    _read_states_txn,
                    user_id,
                    part,
                    sorted(receipt_types),
                    scan_limit,
                )
            )
        return result


def _read_states_txn(
    txn: Transaction,
    user_id: str,
    room_ids: Sequence[str],
    receipt_types: Sequence[str],
    scan_limit: int,
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
            "events": [],
            "joined_members": 0,
        }
    if not rooms:
        return {}
    nids = sorted(rooms)
    nid_marks = ",".join("?" * len(nids))
    type_marks = ",".join("?" * len(receipt_types))
    txn.execute(
        "SELECT room_nid, thread_id, MAX(event_stream_ordering) FROM receipts"
        f" WHERE user_id = ? AND room_nid IN ({nid_marks}) AND receipt_type IN ({type_marks})"
        " AND event_stream_ordering IS NOT NULL GROUP BY room_nid, thread_id",
        (user_id, *nids, *receipt_types),
    )
    for room_nid, thread_id, mark in txn.fetchall():
        room = rooms[int(room_nid)]
        if thread_id == UNTHREADED:
            room["unthreaded_mark"] = int(mark)
        else:
            room["thread_marks"][thread_id] = int(mark)
    selects = []
    args: list[Any] = []
    for index, nid in enumerate(nids):
        room = rooms[nid]
        selects.append(
            "SELECT * FROM (SELECT room_nid, stream_ordering, event_id, sender FROM events"
            " WHERE room_nid = ? AND stream_ordering > ? AND outlier = ? AND soft_failed = ?"
            f" AND rejected_reason IS NULL ORDER BY stream_ordering DESC LIMIT ?) AS s{index}"
        )
        args.extend(
            (nid, max(room["joined_at"], room["unthreaded_mark"]), False, False, scan_limit)
        )
    txn.execute(" UNION ALL ".join(selects), args)
    for room_nid, stream_ordering, event_id, sender in txn.fetchall():
        rooms[int(room_nid)]["events"].append(ScannedEvent(int(stream_ordering), event_id, sender))
    # Member counts only where there is something to evaluate (room_member_count).
    busy = [nid for nid in nids if rooms[nid]["events"]]
    if busy:
        busy_marks = ",".join("?" * len(busy))
        txn.execute(
            "SELECT room_nid, COUNT(*) FROM room_memberships"
            f" WHERE membership = ? AND room_nid IN ({busy_marks}) GROUP BY room_nid",
            ("join", *busy),
        )
        for room_nid, count in txn.fetchall():
            rooms[int(room_nid)]["joined_members"] = int(count)
    states = {}
    for room in rooms.values():
        room["events"].sort(key=lambda event: event.stream_ordering, reverse=True)
        states[room["room_id"]] = RoomReadState(**room)
    return states
