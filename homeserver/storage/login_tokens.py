"""Short-lived login tokens for ``m.login.token``: SQL only.  Owns ``login_tokens``.

spec: client-server-api/_index.md#post_matrixclientv1loginget_token
"""

from __future__ import annotations

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


class LoginTokenStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_login_token(self, token_hash: str, user_id: str, expires_ts: int) -> None:
        await self._db.execute(
            "add_login_token",
            "INSERT INTO login_tokens (token_hash, user_id, expires_ts) VALUES (?, ?, ?)",
            token_hash,
            user_id,
            expires_ts,
        )

    async def consume_login_token(self, token_hash: str, now_ms: int) -> str | None:
        """The user a valid token belongs to, deleting it (single use); None if invalid."""

        def consume(txn: Transaction) -> str | None:
            txn.execute(
                "SELECT user_id, expires_ts FROM login_tokens WHERE token_hash = ?",
                (token_hash,),
            )
            row = txn.fetchone()
            # Expired tokens are swept here, so the table holds only live ones.
            txn.execute("DELETE FROM login_tokens WHERE expires_ts <= ?", (now_ms,))
            if row is None or int(row[1]) <= now_ms:
                return None
            txn.execute("DELETE FROM login_tokens WHERE token_hash = ?", (token_hash,))
            return str(row[0])

        return await self._db.run_interaction("consume_login_token", consume)
