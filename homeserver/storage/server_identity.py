"""Which server a database belongs to: SQL only.  Owns ``server_identity``.

Every user ID, alias and signature in a database carries its server's name, so a
database started under another name would mix two servers' users in one.
"""

from __future__ import annotations

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


class ServerIdentityStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def claim(self, server_name: str) -> str:
        """The name the database belongs to, recording ``server_name`` if it has none.

        A database made before the name was recorded belongs to the server of its
        users; only an empty one is claimed by whoever starts it first.
        """

        def claim(txn: Transaction) -> str:
            owner = _recorded_owner(txn)
            if owner is not None:
                return owner
            txn.execute("SELECT user_id FROM users LIMIT 1")
            row = txn.fetchone()
            claimant = str(row[0]).split(":", 1)[1] if row is not None else server_name
            txn.execute(
                "INSERT INTO server_identity (only_row, server_name) VALUES (1, ?)"
                " ON CONFLICT (only_row) DO NOTHING",
                (claimant,),
            )
            owner = _recorded_owner(txn)
            assert owner is not None
            return owner

        return await self._db.run_interaction("claim_server_identity", claim)


def _recorded_owner(txn: Transaction) -> str | None:
    txn.execute("SELECT server_name FROM server_identity")
    row = txn.fetchone()
    return None if row is None else str(row[0])
