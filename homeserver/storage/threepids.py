"""Users' validated email addresses and the validation sessions that prove them: SQL
only.  Owns ``user_threepids`` and ``threepid_validation_sessions``
(schema/0033_threepids.sql).

spec: client-server-api/_index.md ("Adding Account Administrative Contact
Information"), data/api/client-server/administrative_contact.yaml
"""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


@attrs.frozen
class ThreepidRecord:
    medium: str
    address: str
    user_id: str
    validated_at: int
    added_at: int


@attrs.frozen
class ValidationSession:
    session_id: str
    medium: str
    address: str
    client_secret: str
    token_hash: str
    last_send_attempt: int
    next_link: str | None
    created_ts: int
    expires_ts: int
    validated_at: int | None


class ThreepidInUseError(Exception):
    """The address belongs to another account."""


_SESSION_COLUMNS = (
    "session_id, medium, address, client_secret, token_hash, last_send_attempt,"
    " next_link, created_ts, expires_ts, validated_at"
)


def _session(row: tuple[Any, ...]) -> ValidationSession:
    sid, medium, address, secret, token_hash, attempt, next_link, created, expires, done = row
    return ValidationSession(
        session_id=str(sid),
        medium=str(medium),
        address=str(address),
        client_secret=str(secret),
        token_hash=str(token_hash),
        last_send_attempt=int(attempt),
        next_link=None if next_link is None else str(next_link),
        created_ts=int(created),
        expires_ts=int(expires),
        validated_at=None if done is None else int(done),
    )


class ThreepidStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_threepids(self, user_id: str) -> list[ThreepidRecord]:
        rows = await self._db.execute_read(
            "get_user_threepids",
            "SELECT medium, address, user_id, validated_at, added_at FROM user_threepids"
            " WHERE user_id = ? ORDER BY added_at, address",
            user_id,
        )
        return [ThreepidRecord(m, a, u, int(v), int(t)) for m, a, u, v, t in rows]

    async def owner_of(self, medium: str, address: str) -> str | None:
        rows = await self._db.execute_read(
            "threepid_owner",
            "SELECT user_id FROM user_threepids WHERE medium = ? AND address = ?",
            medium,
            address,
        )
        return str(rows[0][0]) if rows else None

    async def add_threepid(self, record: ThreepidRecord) -> None:
        """Add ``record`` (again: its times are updated).  Raises
        :class:`ThreepidInUseError` if another account has the address."""

        def write(txn: Transaction) -> None:
            # One statement decides: a concurrent add of the same address by another
            # account either inserts first (and this one updates nothing) or finds
            # this one's row; a separate check before the insert would race.
            txn.execute(
                "INSERT INTO user_threepids (medium, address, user_id, validated_at, added_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (medium, address) DO UPDATE SET"
                " validated_at = excluded.validated_at, added_at = excluded.added_at"
                " WHERE user_threepids.user_id = excluded.user_id",
                (
                    record.medium,
                    record.address,
                    record.user_id,
                    record.validated_at,
                    record.added_at,
                ),
            )
            if txn.rowcount == 0:
                raise ThreepidInUseError(record.address)

        await self._db.run_interaction("add_user_threepid", write)

    async def delete_threepid(self, user_id: str, medium: str, address: str) -> bool:
        """Whether the user had the address."""

        def write(txn: Transaction) -> bool:
            txn.execute(
                "DELETE FROM user_threepids WHERE user_id = ? AND medium = ? AND address = ?",
                (user_id, medium, address),
            )
            return bool(txn.rowcount)

        return await self._db.run_interaction("delete_user_threepid", write)

    async def get_session(self, session_id: str) -> ValidationSession | None:
        rows = await self._db.execute_read(
            "get_threepid_session",
            f"SELECT {_SESSION_COLUMNS} FROM threepid_validation_sessions WHERE session_id = ?",
            session_id,
        )
        return _session(rows[0]) if rows else None

    async def start_session(self, candidate: ValidationSession) -> tuple[ValidationSession, bool]:
        """The session of ``candidate``'s (medium, address, client secret): a new one
        (``candidate``), or the existing one moved to ``candidate``'s send attempt,
        token and expiry if that attempt is higher.  Returns it and whether a mail
        must be sent (new session or higher attempt)."""

        def write(txn: Transaction) -> tuple[ValidationSession, bool]:
            txn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM threepid_validation_sessions"
                " WHERE medium = ? AND address = ? AND client_secret = ?",
                (candidate.medium, candidate.address, candidate.client_secret),
            )
            row = txn.fetchone()
            if row is None:
                txn.execute(
                    f"INSERT INTO threepid_validation_sessions ({_SESSION_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    attrs.astuple(candidate),
                )
                return candidate, True
            existing = _session(row)
            if candidate.last_send_attempt <= existing.last_send_attempt:
                return existing, False
            moved = attrs.evolve(
                existing,
                token_hash=candidate.token_hash,
                last_send_attempt=candidate.last_send_attempt,
                next_link=candidate.next_link,
                expires_ts=candidate.expires_ts,
            )
            txn.execute(
                "UPDATE threepid_validation_sessions SET token_hash = ?, last_send_attempt = ?,"
                " next_link = ?, expires_ts = ? WHERE session_id = ?",
                (
                    moved.token_hash,
                    moved.last_send_attempt,
                    moved.next_link,
                    moved.expires_ts,
                    moved.session_id,
                ),
            )
            return moved, True

        return await self._db.run_interaction("start_threepid_session", write)

    async def mark_validated(self, session_id: str, now: int, expires_ts: int) -> None:
        """Validated at ``now`` (the first time only), usable until ``expires_ts``."""
        await self._db.execute(
            "validate_threepid_session",
            "UPDATE threepid_validation_sessions SET"
            " validated_at = COALESCE(validated_at, ?), expires_ts = ? WHERE session_id = ?",
            now,
            expires_ts,
            session_id,
        )

    async def delete_session(self, session_id: str) -> None:
        await self._db.execute(
            "delete_threepid_session",
            "DELETE FROM threepid_validation_sessions WHERE session_id = ?",
            session_id,
        )

    async def delete_expired_sessions(self, now: int) -> None:
        await self._db.execute(
            "delete_expired_threepid_sessions",
            "DELETE FROM threepid_validation_sessions WHERE expires_ts < ?",
            now,
        )
