"""Positions of the background readers of the events stream: SQL only.

Owns ``stream_consumers`` (schema/0029_stream_consumers.sql).  Reads ``events``
(owned by storage.events) to list what a consumer has not seen yet: events clients
can see (not outliers, not rejected, not soft-failed) by stream position.
"""

from __future__ import annotations

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


class StreamConsumerStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_position(self, name: str) -> int | None:
        """Where consumer ``name`` stopped, or None if it never ran."""
        rows = await self._db.execute_read(
            "get_stream_consumer_position",
            "SELECT position FROM stream_consumers WHERE name = ?",
            name,
        )
        return int(rows[0][0]) if rows else None

    async def set_position(self, name: str, position: int) -> None:
        await self._db.run_interaction(
            "set_stream_consumer_position", set_position_txn, name, position
        )

    async def events_after(self, after: int, up_to: int, limit: int) -> list[tuple[int, str]]:
        """``(stream_ordering, event_id)`` of the visible events in ``(after, up_to]``,
        oldest first, at most ``limit`` (read over the unique index on
        ``stream_ordering``)."""
        rows = await self._db.execute_read(
            "stream_consumer_events_after",
            "SELECT stream_ordering, event_id FROM events"
            " WHERE stream_ordering > ? AND stream_ordering <= ?"
            " AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed"
            " ORDER BY stream_ordering LIMIT ?",
            after,
            up_to,
            limit,
        )
        return [(int(position), str(event_id)) for position, event_id in rows]


def set_position_txn(txn: Transaction, name: str, position: int) -> None:
    """Record ``position`` for ``name``, inside a consumer's own write transaction when
    it wants its work and its position committed together."""
    txn.execute(
        "INSERT INTO stream_consumers (name, position) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        (name, position),
    )
