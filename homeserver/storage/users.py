"""Accounts: SQL only.  Owns the ``users`` table."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


class UserExistsError(Exception):
    """A user with that ID is already registered."""


@attrs.frozen
class UserRecord:
    user_id: str
    password_hash: str | None
    is_admin: bool
    user_type: str | None
    created_ts: int
    deactivated: bool
    #: A guest account (spec: client-server-api/modules/guest_access.md).
    is_guest: bool = False


class UserStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_user(
        self,
        user_id: str,
        *,
        password_hash: str | None,
        created_ts: int,
        is_admin: bool = False,
        user_type: str | None = None,
        is_guest: bool = False,
    ) -> None:
        """Insert a new account; raises :class:`UserExistsError` if the ID is taken."""

        def create(txn: Transaction) -> None:
            txn.execute("SELECT 1 FROM users WHERE user_id = ?", (user_id,))
            if txn.fetchone() is not None:
                raise UserExistsError(user_id)
            txn.execute(
                "INSERT INTO users (user_id, password_hash, is_admin, user_type, created_ts,"
                " deactivated, is_guest) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, password_hash, is_admin, user_type, created_ts, False, is_guest),
            )

        await self._db.run_interaction("create_user", create)

    async def get_user(self, user_id: str) -> UserRecord | None:
        rows = await self._db.execute_read(
            "get_user",
            "SELECT user_id, password_hash, is_admin, user_type, created_ts, deactivated,"
            " is_guest FROM users WHERE user_id = ?",
            user_id,
        )
        if not rows:
            return None
        user_id, password_hash, is_admin, user_type, created_ts, deactivated, is_guest = rows[0]
        return UserRecord(
            user_id=user_id,
            password_hash=password_hash,
            is_admin=bool(is_admin),
            user_type=user_type,
            created_ts=int(created_ts),
            deactivated=bool(deactivated),
            is_guest=bool(is_guest),
        )

    async def set_admin(self, user_id: str, is_admin: bool) -> None:
        await self._db.execute(
            "set_admin", "UPDATE users SET is_admin = ? WHERE user_id = ?", is_admin, user_id
        )

    async def count_users(self) -> int:
        rows = await self._db.execute("count_users", "SELECT COUNT(*) FROM users")
        return int(rows[0][0])

    async def find_user_case_insensitive(self, user_id: str) -> str | None:
        """The stored ID matching ``user_id`` exactly, else the one match ignoring case.

        Login accepts ``@Alice:hs`` for ``@alice:hs``; if several accounts differ only
        in case (possible for old accounts), only an exact match is accepted.
        """

        def find(txn: Transaction) -> str | None:
            txn.execute("SELECT user_id FROM users WHERE user_id = ?", (user_id,))
            if txn.fetchone() is not None:
                return user_id
            txn.execute("SELECT user_id FROM users WHERE lower(user_id) = ?", (user_id.lower(),))
            rows = txn.fetchall()
            return str(rows[0][0]) if len(rows) == 1 else None

        return await self._db.run_interaction("find_user_case_insensitive", find)

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        await self._db.execute(
            "set_password_hash",
            "UPDATE users SET password_hash = ? WHERE user_id = ?",
            password_hash,
            user_id,
        )

    async def replace_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Set ``new_hash`` only if the stored hash is still ``old_hash``; True if it was."""

        def replace(txn: Transaction) -> bool:
            txn.execute(
                "UPDATE users SET password_hash = ? WHERE user_id = ? AND password_hash = ?",
                (new_hash, user_id, old_hash),
            )
            return bool(txn.rowcount == 1)

        return await self._db.run_interaction("replace_password_hash", replace)

    async def deactivate_user(self, user_id: str) -> None:
        """Mark the account deactivated and erase its password."""
        await self._db.execute(
            "deactivate_user",
            "UPDATE users SET deactivated = ?, password_hash = NULL WHERE user_id = ?",
            True,
            user_id,
        )

    async def next_generated_localpart(self) -> str:
        """A numeric localpart for a user who registered without choosing one."""

        def next_id(txn: Transaction) -> int:
            return txn.engine.next_id(txn, "generated_user_ids")

        return str(await self._db.run_interaction("next_generated_localpart", next_id))

    async def upgrade_guest(self, user_id: str, password_hash: str | None) -> bool:
        """Turn a guest account into an ordinary one with a password; False if
        ``user_id`` is not (or no longer) a guest.  spec: modules/guest_access.md"""

        def upgrade(txn: Transaction) -> bool:
            txn.execute(
                "UPDATE users SET is_guest = ?, password_hash = ? WHERE user_id = ? AND is_guest = ?",
                (False, password_hash, user_id, True),
            )
            return bool(txn.rowcount == 1)

        return await self._db.run_interaction("upgrade_guest", upgrade)

    async def guests_among(self, user_ids: Sequence[str]) -> set[str]:
        """Which of ``user_ids`` are guest accounts."""
        if not user_ids:
            return set()
        placeholders = ", ".join("?" for _ in user_ids)
        rows = await self._db.execute(
            "guests_among",
            f"SELECT user_id FROM users WHERE is_guest = ? AND user_id IN ({placeholders})",
            True,
            *user_ids,
        )
        return {str(row[0]) for row in rows}
