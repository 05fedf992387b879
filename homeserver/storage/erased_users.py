"""Which accounts were erased at deactivation: SQL only.

Owns ``erased_users``.  spec: client-server-api/_index.md#post_matrixclientv3accountdeactivate
(``erase``).
"""

from __future__ import annotations

from collections.abc import Collection

from homeserver.storage.database import Database
from homeserver.storage.state import chunks
from homeserver.storage.transaction import Transaction


class ErasedUserStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def mark_erased(self, user_id: str) -> None:
        await self._db.execute(
            "mark_user_erased",
            "INSERT INTO erased_users (user_id) VALUES (?) ON CONFLICT (user_id) DO NOTHING",
            user_id,
        )

    async def erased_among(self, user_ids: Collection[str]) -> frozenset[str]:
        """The users of ``user_ids`` whose accounts were erased."""

        def read(txn: Transaction) -> frozenset[str]:
            found: set[str] = set()
            for part in chunks(sorted(user_ids)):
                txn.execute(
                    "SELECT user_id FROM erased_users"
                    f" WHERE user_id IN ({','.join('?' * len(part))})",
                    part,
                )
                found.update(str(row[0]) for row in txn.fetchall())
            return frozenset(found)

        if not user_ids:
            return frozenset()
        return await self._db.run_interaction("erased_among", read)
