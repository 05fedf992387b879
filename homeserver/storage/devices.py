"""Devices and their access tokens: SQL only.  Owns ``devices`` and ``access_tokens``.

Deleting devices also deletes their refresh tokens (``storage.refresh_tokens``),
end-to-end keys (``storage.e2e_keys``) and waiting to-device messages
(``storage.to_device``) in the same transaction, so no token, key or message outlives
its device.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

# DeviceRecord belongs to the device handler's layer; re-exported here.
from homeserver.auth.device_record import DeviceRecord as DeviceRecord
from homeserver.storage.cross_signing import is_cross_signing_key_txn
from homeserver.storage.database import Database
from homeserver.storage.e2e_keys import delete_all_device_keys_txn, delete_device_keys_txn
from homeserver.storage.refresh_tokens import (
    delete_refresh_tokens_for_devices_txn,
    delete_refresh_tokens_for_user_txn,
    insert_refresh_token_txn,
    revoke_predecessors_txn,
)
from homeserver.storage.to_device import (
    delete_all_device_messages_txn,
    delete_device_messages_txn,
)
from homeserver.storage.transaction import Transaction

logger = logging.getLogger(__name__)


class DeviceIdTaken(Exception):
    """A new device may not take this ID: it is one of the user's cross-signing keys
    (spec: client-server-api/modules/end_to_end_encryption.md#key-and-signature-security)."""


@attrs.frozen
class AccessTokenRecord:
    token_id: int
    user_id: str
    device_id: str | None
    expires_ts: int | None
    #: The refresh token this access token was issued with, if any.
    refresh_token_id: int | None = None
    #: Whether the token has been used since it was issued.
    used: bool = False


@attrs.frozen
class LastSeen:
    """One device's most recent request, as the batch writer flushes it."""

    user_id: str
    device_id: str
    ip: str
    user_agent: str | None
    ts: int


_DEVICE_COLUMNS = (
    "user_id, device_id, display_name, last_seen_ts, last_seen_ip, last_seen_user_agent"
)


def _device(row: tuple[Any, ...]) -> DeviceRecord:
    user_id, device_id, display_name, last_seen_ts, last_seen_ip, user_agent = row
    return DeviceRecord(
        user_id=user_id,
        device_id=device_id,
        display_name=display_name,
        last_seen_ts=None if last_seen_ts is None else int(last_seen_ts),
        last_seen_ip=last_seen_ip,
        last_seen_user_agent=user_agent,
    )


class DeviceStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        #: Awaited with the user ID after a commit renamed or deleted any of the
        #: user's devices (device-list tracking, e2ee/device_lists.py).  Every path
        #: that does (device API, logout, password change, deactivation) comes here.
        self.on_devices_changed: list[Callable[[str], Awaitable[None]]] = []

    async def _devices_changed(self, user_id: str) -> None:
        for callback in self.on_devices_changed:
            try:
                await callback(user_id)
            except Exception:
                # The change is committed; only the listener failed.
                logger.error("devices-changed callback failed for %s", user_id, exc_info=True)

    async def add_device_with_token(
        self,
        user_id: str,
        device_id: str,
        token_hash: str,
        *,
        created_ts: int,
        display_name: str | None = None,
        expires_ts: int | None = None,
        refresh_token_hash: str | None = None,
        replace_existing_tokens: bool = False,
    ) -> int:
        """Create (or reuse) the device and add an access token for it; returns the token id.

        With ``refresh_token_hash`` a refresh token is stored and bound to the access
        token.  ``replace_existing_tokens`` first revokes the device's other tokens
        (a login that names an existing device takes it over).  :class:`DeviceIdTaken`
        when a new device would take the ID of one of the user's cross-signing keys.
        """

        def add(txn: Transaction) -> int:
            txn.execute(
                "SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id)
            )
            if txn.fetchone() is None and is_cross_signing_key_txn(txn, user_id, device_id):
                raise DeviceIdTaken(device_id)
            txn.execute(
                "INSERT INTO devices (user_id, device_id, display_name, created_ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO NOTHING",
                (user_id, device_id, display_name, created_ts),
            )
            if txn.rowcount == 1:
                # A new device starts with an empty inbox and no transaction IDs, even
                # when it reuses the ID of a deleted one: a send that raced that
                # deletion may have left rows behind (docs/architecture.md).
                delete_device_messages_txn(txn, user_id, [device_id])
            if replace_existing_tokens:
                txn.execute(
                    "DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?",
                    (user_id, device_id),
                )
                delete_refresh_tokens_for_devices_txn(txn, user_id, [device_id])
            refresh_token_id = None
            if refresh_token_hash is not None:
                refresh_token_id = insert_refresh_token_txn(
                    txn, refresh_token_hash, user_id, device_id, created_ts
                )
            token_id = txn.engine.next_id(txn, "access_token_ids")
            txn.execute(
                "INSERT INTO access_tokens (id, token_hash, user_id, device_id, created_ts,"
                " expires_ts, refresh_token_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token_id,
                    token_hash,
                    user_id,
                    device_id,
                    created_ts,
                    expires_ts,
                    refresh_token_id,
                ),
            )
            return token_id

        return await self._db.run_interaction("add_device_with_token", add)

    async def get_access_token(self, token_hash: str) -> AccessTokenRecord | None:
        rows = await self._db.execute_read(
            "get_access_token",
            "SELECT id, user_id, device_id, expires_ts, refresh_token_id, used"
            " FROM access_tokens WHERE token_hash = ?",
            token_hash,
        )
        if not rows:
            return None
        token_id, user_id, device_id, expires_ts, refresh_token_id, used = rows[0]
        return AccessTokenRecord(
            token_id=int(token_id),
            user_id=user_id,
            device_id=device_id,
            expires_ts=None if expires_ts is None else int(expires_ts),
            refresh_token_id=None if refresh_token_id is None else int(refresh_token_id),
            used=bool(used),
        )

    async def mark_access_token_used(self, token_id: int, refresh_token_id: int | None) -> None:
        """First use of a token: the refresh token its refresh token replaced is revoked."""

        def mark(txn: Transaction) -> None:
            txn.execute("UPDATE access_tokens SET used = ? WHERE id = ?", (True, token_id))
            if refresh_token_id is not None:
                revoke_predecessors_txn(txn, refresh_token_id)

        await self._db.run_interaction("mark_access_token_used", mark)

    async def get_device(self, user_id: str, device_id: str) -> DeviceRecord | None:
        rows = await self._db.execute(
            "get_device",
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE user_id = ? AND device_id = ?",
            user_id,
            device_id,
        )
        return _device(rows[0]) if rows else None

    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        rows = await self._db.execute(
            "list_devices",
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE user_id = ? ORDER BY device_id",
            user_id,
        )
        return [_device(row) for row in rows]

    async def set_display_name(self, user_id: str, device_id: str, display_name: str) -> bool:
        """Rename a device; False if the user has no such device."""

        def rename(txn: Transaction) -> bool:
            txn.execute(
                "UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                (display_name, user_id, device_id),
            )
            return txn.rowcount > 0

        renamed = await self._db.run_interaction("set_device_display_name", rename)
        if renamed:
            await self._devices_changed(user_id)
        return renamed

    async def delete_devices(self, user_id: str, device_ids: Sequence[str]) -> None:
        """Delete devices with all their access and refresh tokens (unknown ids are ignored)."""

        def delete(txn: Transaction) -> None:
            pairs = [(user_id, device_id) for device_id in device_ids]
            txn.executemany("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?", pairs)
            delete_refresh_tokens_for_devices_txn(txn, user_id, device_ids)
            delete_device_keys_txn(txn, user_id, device_ids)
            delete_device_messages_txn(txn, user_id, device_ids)
            txn.executemany("DELETE FROM devices WHERE user_id = ? AND device_id = ?", pairs)

        await self._db.run_interaction("delete_devices", delete)
        if device_ids:
            await self._devices_changed(user_id)

    async def delete_all_devices(
        self, user_id: str, *, except_device_id: str | None = None
    ) -> list[str]:
        """Delete every device of the user (but ``except_device_id``) with their tokens;
        returns the deleted device IDs.  Access tokens without a device are deleted too.
        """

        def delete(txn: Transaction) -> list[str]:
            if except_device_id is None:
                txn.execute("SELECT device_id FROM devices WHERE user_id = ?", (user_id,))
                deleted = [row[0] for row in txn.fetchall()]
                txn.execute("DELETE FROM access_tokens WHERE user_id = ?", (user_id,))
                txn.execute("DELETE FROM devices WHERE user_id = ?", (user_id,))
            else:
                txn.execute(
                    "SELECT device_id FROM devices WHERE user_id = ? AND device_id <> ?",
                    (user_id, except_device_id),
                )
                deleted = [row[0] for row in txn.fetchall()]
                txn.execute(
                    "DELETE FROM access_tokens WHERE user_id = ?"
                    " AND (device_id IS NULL OR device_id <> ?)",
                    (user_id, except_device_id),
                )
                txn.execute(
                    "DELETE FROM devices WHERE user_id = ? AND device_id <> ?",
                    (user_id, except_device_id),
                )
            delete_refresh_tokens_for_user_txn(txn, user_id, except_device_id)
            delete_all_device_keys_txn(txn, user_id, except_device_id)
            delete_all_device_messages_txn(txn, user_id, except_device_id)
            return deleted

        deleted = await self._db.run_interaction("delete_all_devices", delete)
        if deleted:
            await self._devices_changed(user_id)
        return deleted

    async def delete_access_token(self, token_id: int) -> None:
        await self._db.execute(
            "delete_access_token", "DELETE FROM access_tokens WHERE id = ?", token_id
        )

    async def delete_other_access_tokens(
        self, user_id: str, device_id: str, except_token_id: int
    ) -> None:
        """Revoke a device's tokens except one (the caller's, after a password change)."""
        await self._db.execute(
            "delete_other_access_tokens",
            "DELETE FROM access_tokens WHERE user_id = ? AND device_id = ? AND id <> ?",
            user_id,
            device_id,
            except_token_id,
        )

    async def update_last_seen(self, seen: Sequence[LastSeen]) -> None:
        """Write a batch of last-seen updates in one transaction."""

        def update(txn: Transaction) -> None:
            txn.executemany(
                "UPDATE devices SET last_seen_ts = ?, last_seen_ip = ?, last_seen_user_agent = ?"
                " WHERE user_id = ? AND device_id = ?",
                [(s.ts, s.ip, s.user_agent, s.user_id, s.device_id) for s in seen],
            )

        await self._db.run_interaction("update_last_seen", update)
