"""Devices and their access tokens: SQL only.  Owns ``devices`` and ``access_tokens``."""

from __future__ import annotations

import attrs

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


@attrs.frozen
class AccessTokenRecord:
    token_id: int
    user_id: str
    device_id: str | None
    expires_ts: int | None


class DeviceStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_device_with_token(
        self,
        user_id: str,
        device_id: str,
        token_hash: str,
        *,
        created_ts: int,
        display_name: str | None = None,
        expires_ts: int | None = None,
    ) -> int:
        """Create (or reuse) the device and add an access token for it; returns the token id."""

        def add(txn: Transaction) -> int:
            txn.execute(
                "INSERT INTO devices (user_id, device_id, display_name, created_ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO NOTHING",
                (user_id, device_id, display_name, created_ts),
            )
            token_id = txn.engine.next_id(txn, "access_token_ids")
            txn.execute(
                "INSERT INTO access_tokens (id, token_hash, user_id, device_id, created_ts,"
                " expires_ts) VALUES (?, ?, ?, ?, ?, ?)",
                (token_id, token_hash, user_id, device_id, created_ts, expires_ts),
            )
            return token_id

        return await self._db.run_interaction("add_device_with_token", add)

    async def get_access_token(self, token_hash: str) -> AccessTokenRecord | None:
        rows = await self._db.execute(
            "get_access_token",
            "SELECT id, user_id, device_id, expires_ts FROM access_tokens WHERE token_hash = ?",
            token_hash,
        )
        if not rows:
            return None
        token_id, user_id, device_id, expires_ts = rows[0]
        return AccessTokenRecord(
            token_id=int(token_id),
            user_id=user_id,
            device_id=device_id,
            expires_ts=None if expires_ts is None else int(expires_ts),
        )
