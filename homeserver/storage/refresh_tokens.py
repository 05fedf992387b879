"""Refresh tokens: SQL only.  Owns ``refresh_tokens``.

Rotation (spec: client-server-api/_index.md#refreshing-access-tokens): using a
refresh token issues a new pair and links the old token to its successor
(``next_token_id``).  The old one keeps working until the successor pair is first
used, so a client that lost the response can simply refresh again.

The ``*_txn`` functions run inside another store's transaction, so deleting a
device removes its refresh tokens atomically with its access tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


@attrs.frozen
class RefreshTokenRecord:
    token_id: int
    user_id: str
    device_id: str
    next_token_id: int | None


def insert_refresh_token_txn(
    txn: Transaction, token_hash: str, user_id: str, device_id: str, created_ts: int
) -> int:
    token_id = txn.engine.next_id(txn, "refresh_token_ids")
    txn.execute(
        "INSERT INTO refresh_tokens (id, token_hash, user_id, device_id, created_ts)"
        " VALUES (?, ?, ?, ?, ?)",
        (token_id, token_hash, user_id, device_id, created_ts),
    )
    return token_id


def delete_refresh_tokens_for_devices_txn(
    txn: Transaction, user_id: str, device_ids: Sequence[str]
) -> None:
    txn.executemany(
        "DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?",
        [(user_id, device_id) for device_id in device_ids],
    )


def delete_refresh_tokens_for_user_txn(
    txn: Transaction, user_id: str, except_device_id: str | None = None
) -> None:
    if except_device_id is None:
        txn.execute("DELETE FROM refresh_tokens WHERE user_id = ?", (user_id,))
    else:
        txn.execute(
            "DELETE FROM refresh_tokens WHERE user_id = ? AND device_id <> ?",
            (user_id, except_device_id),
        )


def revoke_predecessors_txn(txn: Transaction, refresh_token_id: int) -> None:
    """The successor ``refresh_token_id`` was used: the token it replaced is revoked."""
    txn.execute("DELETE FROM refresh_tokens WHERE next_token_id = ?", (refresh_token_id,))


class RefreshTokenStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        rows = await self._db.execute(
            "get_refresh_token",
            "SELECT id, user_id, device_id, next_token_id FROM refresh_tokens WHERE token_hash = ?",
            token_hash,
        )
        if not rows:
            return None
        token_id, user_id, device_id, next_token_id = rows[0]
        return RefreshTokenRecord(
            token_id=int(token_id),
            user_id=user_id,
            device_id=device_id,
            next_token_id=None if next_token_id is None else int(next_token_id),
        )

    async def rotate(
        self,
        old: RefreshTokenRecord,
        *,
        refresh_token_hash: str,
        access_token_hash: str,
        created_ts: int,
        expires_ts: int | None,
    ) -> bool:
        """Replace ``old`` by a new refresh token and a new access token bound to it.

        Returns False (and changes nothing) if ``old`` was revoked meanwhile.
        """

        def rotate(txn: Transaction) -> bool:
            txn.execute("SELECT next_token_id FROM refresh_tokens WHERE id = ?", (old.token_id,))
            row = txn.fetchone()
            if row is None:
                return False
            previous_successor = row[0]
            if previous_successor is not None:
                # The client is retrying: the successor it never received is dropped.
                txn.execute("DELETE FROM refresh_tokens WHERE id = ?", (previous_successor,))
                txn.execute(
                    "DELETE FROM access_tokens WHERE refresh_token_id = ?", (previous_successor,)
                )
            # The access token issued with the old refresh token is superseded.
            txn.execute("DELETE FROM access_tokens WHERE refresh_token_id = ?", (old.token_id,))
            new_id = insert_refresh_token_txn(
                txn, refresh_token_hash, old.user_id, old.device_id, created_ts
            )
            txn.execute(
                "UPDATE refresh_tokens SET next_token_id = ? WHERE id = ?", (new_id, old.token_id)
            )
            access_id = txn.engine.next_id(txn, "access_token_ids")
            txn.execute(
                "INSERT INTO access_tokens (id, token_hash, user_id, device_id, created_ts,"
                " expires_ts, refresh_token_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    access_id,
                    access_token_hash,
                    old.user_id,
                    old.device_id,
                    created_ts,
                    expires_ts,
                    new_id,
                ),
            )
            return True

        return await self._db.run_interaction("rotate_refresh_token", rotate)

    async def revoke_predecessors(self, refresh_token_id: int) -> None:
        await self._db.run_interaction(
            "revoke_refresh_predecessors", revoke_predecessors_txn, refresh_token_id
        )
