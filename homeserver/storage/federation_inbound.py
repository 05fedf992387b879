"""Transactions received from other servers: SQL only.  Owns ``received_transactions``.

A server retries a transaction until it gets a 200 (spec:
server-server-api.md#transactions), so the response to each ``(origin, txnId)`` is
kept for a day and answered again for a retry instead of processing it twice.
"""

from __future__ import annotations

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


class ReceivedTransactionStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_response(self, origin: str, transaction_id: str) -> str | None:
        """The JSON response given to ``origin``'s transaction, or None if unseen."""
        rows = await self._db.execute(
            "get_received_transaction",
            "SELECT response_json FROM received_transactions"
            " WHERE origin = ? AND transaction_id = ?",
            origin,
            transaction_id,
        )
        return str(rows[0][0]) if rows else None

    async def store_response(
        self, origin: str, transaction_id: str, response_json: str, received_ts: int
    ) -> None:
        """Remember the response to a processed transaction (the first one stays)."""

        def store(txn: Transaction) -> None:
            txn.execute(
                "INSERT INTO received_transactions"
                " (origin, transaction_id, response_json, received_ts) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (origin, transaction_id) DO NOTHING",
                (origin, transaction_id, response_json, received_ts),
            )

        await self._db.run_interaction("store_received_transaction", store)

    async def prune(self, received_before_ms: int) -> int:
        """Forget the transactions received before ``received_before_ms``; how many."""

        def prune(txn: Transaction) -> int:
            txn.execute(
                "DELETE FROM received_transactions WHERE received_ts < ?", (received_before_ms,)
            )
            return txn.rowcount

        return await self._db.run_interaction("prune_received_transactions", prune)


class LocalResidencyStore:
    """Whether this server is in a room: one of its users is joined in the room's
    current state (read from the membership index, ``room_memberships``, which
    the events store keeps)."""

    def __init__(self, database: Database, server_name: str) -> None:
        self._db = database
        # Server names hold no quote, but may hold LIKE's wildcard "_" in theory.
        escaped = server_name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self._user_pattern = f"%:{escaped}"

    async def has_local_member(self, room_nid: int) -> bool:
        rows = await self._db.execute(
            "has_local_member",
            "SELECT 1 FROM room_memberships WHERE room_nid = ? AND membership = ?"
            " AND user_id LIKE ? ESCAPE '\\' LIMIT 1",
            room_nid,
            "join",
            self._user_pattern,
        )
        return bool(rows)
