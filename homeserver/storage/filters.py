"""Uploaded sync filters: SQL only.  Owns ``user_filters``.

Filters never change once stored.  Uploading a filter identical to one the user
already has (same ``filter_hash``) returns the existing ID.

spec: client-server-api/_index.md#filtering
"""

from __future__ import annotations

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


class FilterStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_filter(self, user_id: str, filter_hash: str, filter_json: str) -> int:
        """Store a filter (or find the identical one) and return its ID."""

        def add(txn: Transaction) -> int:
            existing = _find_txn(txn, user_id, filter_hash)
            if existing is not None:
                return existing
            filter_id = txn.engine.next_id(txn, "user_filter_ids")
            # A concurrent identical upload (another connection) makes this a no-op;
            # on PostgreSQL that surfaces as a serialization failure, and the retry
            # finds the other upload's row.
            txn.execute(
                "INSERT INTO user_filters (user_id, filter_id, filter_hash, filter_json)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, filter_hash) DO NOTHING",
                (user_id, filter_id, filter_hash, filter_json),
            )
            if txn.rowcount == 0:
                found = _find_txn(txn, user_id, filter_hash)
                assert found is not None
                return found
            return filter_id

        return await self._db.run_interaction("add_filter", add)

    async def get_filter(self, user_id: str, filter_id: int) -> str | None:
        """The filter's JSON text, or None if the user has no filter with that ID."""
        rows = await self._db.execute(
            "get_filter",
            "SELECT filter_json FROM user_filters WHERE user_id = ? AND filter_id = ?",
            user_id,
            filter_id,
        )
        return str(rows[0][0]) if rows else None


def _find_txn(txn: Transaction, user_id: str, filter_hash: str) -> int | None:
    txn.execute(
        "SELECT filter_id FROM user_filters WHERE user_id = ? AND filter_hash = ?",
        (user_id, filter_hash),
    )
    row = txn.fetchone()
    return int(row[0]) if row else None
