"""OpenID tokens (``homeserver/auth/openid.py``): SQL only.  Owns ``openid_tokens``.

spec: client-server-api/_index.md#openid, server-server-api.md#openid
"""

from __future__ import annotations

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


class OpenIdTokenStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_token(
        self, token_hash: str, user_id: str, expires_ts: int, *, now_ms: int, max_per_user: int
    ) -> None:
        """Store a token, sweep every expired one, and keep only the ``max_per_user``
        latest of ``user_id``'s (the ones expiring first go)."""

        def add(txn: Transaction) -> None:
            txn.execute("DELETE FROM openid_tokens WHERE expires_ts <= ?", (now_ms,))
            txn.execute(
                "INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES (?, ?, ?)",
                (token_hash, user_id, expires_ts),
            )
            # At most max_per_user + 1 rows: the cap holds after every insert.
            txn.execute(
                "SELECT token_hash FROM openid_tokens WHERE user_id = ?"
                " ORDER BY expires_ts DESC, token_hash",
                (user_id,),
            )
            surplus = [str(row[0]) for row in txn.fetchall()[max_per_user:]]
            for stale in surplus:
                txn.execute("DELETE FROM openid_tokens WHERE token_hash = ?", (stale,))

        await self._db.run_interaction("add_openid_token", add)

    async def user_of_token(self, token_hash: str, now_ms: int) -> str | None:
        """The user a live token names; None if unknown or expired."""
        rows = await self._db.execute(
            "openid_token_user",
            "SELECT user_id FROM openid_tokens WHERE token_hash = ? AND expires_ts > ?",
            token_hash,
            now_ms,
        )
        return str(rows[0][0]) if rows else None
