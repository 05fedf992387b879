"""Registration tokens: SQL only.  Owns ``registration_tokens``.

A token is usable while ``pending + completed < uses_allowed`` (or no limit) and
before ``expiry_time``.  ``pending`` counts registrations that passed the token
stage but have not finished, so a limited token cannot be used by more people at
once than it allows.

spec: client-server-api/_index.md#token-authenticated-registration
"""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


class RegistrationTokenExistsError(Exception):
    """A token with that value already exists."""


@attrs.frozen
class RegistrationToken:
    token: str
    uses_allowed: int | None
    pending: int
    completed: int
    expiry_time: int | None

    def is_valid(self, now_ms: int) -> bool:
        if self.expiry_time is not None and self.expiry_time <= now_ms:
            return False
        return self.uses_allowed is None or self.pending + self.completed < self.uses_allowed


_COLUMNS = "token, uses_allowed, pending, completed, expiry_time"

#: Sentinel for "leave this column as it is" in :meth:`RegistrationTokenStore.update`.
UNCHANGED: Any = object()


def _record(row: tuple[Any, ...]) -> RegistrationToken:
    token, uses_allowed, pending, completed, expiry_time = row
    return RegistrationToken(
        token=token,
        uses_allowed=None if uses_allowed is None else int(uses_allowed),
        pending=int(pending),
        completed=int(completed),
        expiry_time=None if expiry_time is None else int(expiry_time),
    )


def _get_txn(txn: Transaction, token: str) -> RegistrationToken | None:
    txn.execute(f"SELECT {_COLUMNS} FROM registration_tokens WHERE token = ?", (token,))
    row = txn.fetchone()
    return None if row is None else _record(row)


class RegistrationTokenStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(
        self, token: str, uses_allowed: int | None, expiry_time: int | None
    ) -> RegistrationToken:
        def create(txn: Transaction) -> RegistrationToken:
            if _get_txn(txn, token) is not None:
                raise RegistrationTokenExistsError(token)
            txn.execute(
                "INSERT INTO registration_tokens (token, uses_allowed, pending, completed,"
                " expiry_time) VALUES (?, ?, 0, 0, ?)",
                (token, uses_allowed, expiry_time),
            )
            return RegistrationToken(token, uses_allowed, 0, 0, expiry_time)

        return await self._db.run_interaction("create_registration_token", create)

    async def get(self, token: str) -> RegistrationToken | None:
        return await self._db.run_interaction("get_registration_token", _get_txn, token)

    async def list_tokens(self) -> list[RegistrationToken]:
        rows = await self._db.execute(
            "list_registration_tokens", f"SELECT {_COLUMNS} FROM registration_tokens ORDER BY token"
        )
        return [_record(row) for row in rows]

    async def update(
        self, token: str, *, uses_allowed: Any = UNCHANGED, expiry_time: Any = UNCHANGED
    ) -> RegistrationToken | None:
        """Change the given columns; None if there is no such token."""

        def update(txn: Transaction) -> RegistrationToken | None:
            if uses_allowed is not UNCHANGED:
                txn.execute(
                    "UPDATE registration_tokens SET uses_allowed = ? WHERE token = ?",
                    (uses_allowed, token),
                )
            if expiry_time is not UNCHANGED:
                txn.execute(
                    "UPDATE registration_tokens SET expiry_time = ? WHERE token = ?",
                    (expiry_time, token),
                )
            return _get_txn(txn, token)

        return await self._db.run_interaction("update_registration_token", update)

    async def delete(self, token: str) -> bool:
        def delete(txn: Transaction) -> bool:
            txn.execute("DELETE FROM registration_tokens WHERE token = ?", (token,))
            return txn.rowcount > 0

        return await self._db.run_interaction("delete_registration_token", delete)

    async def take_pending_use(self, token: str, now_ms: int) -> bool:
        """If ``token`` is valid, count one pending use of it (atomically) and say so."""

        def take(txn: Transaction) -> bool:
            record = _get_txn(txn, token)
            if record is None or not record.is_valid(now_ms):
                return False
            txn.execute(
                "UPDATE registration_tokens SET pending = pending + 1 WHERE token = ?", (token,)
            )
            return True

        return await self._db.run_interaction("take_registration_token_use", take)

    async def complete_use(self, token: str) -> None:
        """A registration that took a pending use of ``token`` has finished."""
        await self._db.execute(
            "complete_registration_token_use",
            "UPDATE registration_tokens SET pending = pending - 1, completed = completed + 1"
            " WHERE token = ? AND pending > 0",
            token,
        )

    async def release_pending_use(self, token: str) -> None:
        """A registration that took a pending use of ``token`` was abandoned."""
        await self._db.execute(
            "release_registration_token_use",
            "UPDATE registration_tokens SET pending = pending - 1 WHERE token = ? AND pending > 0",
            token,
        )
