"""Server-side key backups: SQL only.

Owns ``room_key_backup_versions`` and ``room_key_backup_keys``
(schema/0024_key_backup.sql).  Which key wins when a session is sent again is the
handler's rule (``e2ee/key_backup.py``), passed in as ``replaces``; the store applies
it inside the transaction that reads the stored keys, so two uploads cannot both
decide against a stale read.

Concurrency: on SQLite writers are serialised; on PostgreSQL (REPEATABLE READ) two
writers of one version both update its row (etag, count), and two creators of a
version number both insert it with ``ON CONFLICT DO NOTHING``: the later one gets a
serialization failure, which ``Database`` retries with a fresh snapshot.

spec: client-server-api/modules/end_to_end_encryption.md#server-side-key-backups
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from homeserver.e2ee.backup_records import (
    BackupVersion,
    KeyRank,
    KeysByRoom,
    KeysState,
    NotCurrent,
    RoomKey,
    UploadedKey,
    VersionDeletion,
)
from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction

__all__ = [
    "BackupVersion",
    "KeyBackupStore",
    "KeyRank",
    "KeysByRoom",
    "KeysState",
    "NotCurrent",
    "RoomKey",
    "UploadedKey",
    "VersionDeletion",
]

#: Session IDs per ``IN (...)`` list: well under SQLite's parameter limit.
_CHUNK = 500

_VERSION_COLUMNS = "version, algorithm, auth_data, etag, key_count"


def _encode(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _version(row: tuple[Any, ...]) -> BackupVersion:
    version, algorithm, auth_data, etag, key_count = row
    return BackupVersion(
        version=int(version),
        algorithm=algorithm,
        auth_data=json.loads(auth_data),
        etag=int(etag),
        count=int(key_count),
    )


def _select_version(txn: Transaction, user_id: str, version: int | None) -> BackupVersion | None:
    """``version`` of ``user_id`` unless deleted; None: the newest undeleted one."""
    if version is None:
        txn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM room_key_backup_versions"
            " WHERE user_id = ? AND NOT deleted ORDER BY version DESC LIMIT 1",
            (user_id,),
        )
    else:
        txn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM room_key_backup_versions"
            " WHERE user_id = ? AND version = ? AND NOT deleted",
            (user_id, version),
        )
    row = txn.fetchone()
    return None if row is None else _version(row)


def _bump(txn: Transaction, user_id: str, current: BackupVersion, added: int) -> KeysState:
    """Record a change of ``current``'s keys: a new etag, ``added`` more keys."""
    txn.execute(
        "UPDATE room_key_backup_versions SET etag = etag + 1, key_count = key_count + ?"
        " WHERE user_id = ? AND version = ?",
        (added, user_id, current.version),
    )
    return KeysState(etag=current.etag + 1, count=current.count + added)


class KeyBackupStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # -- versions ------------------------------------------------------------------

    async def create_version(self, user_id: str, algorithm: str, auth_data: dict[str, Any]) -> int:
        """A new version numbered one past the user's highest (deleted ones count, so
        a number is never reused); it becomes the current version."""

        def create(txn: Transaction) -> int:
            txn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM room_key_backup_versions WHERE user_id = ?",
                (user_id,),
            )
            row = txn.fetchone()
            version = int(row[0] if row is not None else 0) + 1
            # DO NOTHING rather than a plain insert: on PostgreSQL a concurrent
            # creator's row then raises a (retried) serialization failure instead of a
            # unique violation.
            txn.execute(
                "INSERT INTO room_key_backup_versions"
                " (user_id, version, algorithm, auth_data, etag, key_count, deleted)"
                " VALUES (?, ?, ?, ?, 0, 0, ?) ON CONFLICT (user_id, version) DO NOTHING",
                (user_id, version, algorithm, _encode(auth_data), False),
            )
            if txn.rowcount != 1:
                raise RuntimeError(f"backup version {version} of {user_id} already exists")
            return version

        return await self._db.run_interaction("create_backup_version", create)

    async def get_version(self, user_id: str, version: int | None) -> BackupVersion | None:
        """``version`` of ``user_id`` (None: the current one); None if there is no such
        version or it was deleted."""
        return await self._db.run_read("get_backup_version", _select_version, user_id, version)

    async def update_auth_data(self, user_id: str, version: int, auth_data: dict[str, Any]) -> bool:
        """Replace ``auth_data`` of an undeleted version; False if there is none."""

        def update(txn: Transaction) -> bool:
            txn.execute(
                "UPDATE room_key_backup_versions SET auth_data = ?"
                " WHERE user_id = ? AND version = ? AND NOT deleted",
                (_encode(auth_data), user_id, version),
            )
            return txn.rowcount == 1

        return await self._db.run_interaction("update_backup_auth_data", update)

    async def delete_version(self, user_id: str, version: int) -> VersionDeletion:
        """Delete ``version`` and every key in it; its emptied row stays (see schema)."""

        def delete(txn: Transaction) -> VersionDeletion:
            txn.execute(
                "SELECT deleted FROM room_key_backup_versions WHERE user_id = ? AND version = ?",
                (user_id, version),
            )
            row = txn.fetchone()
            if row is None:
                return VersionDeletion.UNKNOWN
            if bool(row[0]):
                return VersionDeletion.ALREADY_DELETED
            txn.execute(
                "DELETE FROM room_key_backup_keys WHERE user_id = ? AND version = ?",
                (user_id, version),
            )
            txn.execute(
                "UPDATE room_key_backup_versions SET deleted = ?, auth_data = '{}',"
                " key_count = 0, etag = etag + 1 WHERE user_id = ? AND version = ?",
                (True, user_id, version),
            )
            return VersionDeletion.DELETED

        return await self._db.run_interaction("delete_backup_version", delete)

    # -- keys ----------------------------------------------------------------------

    async def upload_keys(
        self,
        user_id: str,
        version: int,
        keys: Sequence[UploadedKey],
        replaces: Callable[[RoomKey, KeyRank], bool],
    ) -> KeysState | NotCurrent:
        """Store ``keys`` in ``version``, which must be the user's current version.

        A session not yet in the version is added; one already there is overwritten
        only if ``replaces(new, stored)``.  One transaction: one read of the stored
        ranks per room (in chunks), one batched upsert, one update of the version.
        The etag moves only if a key was written.
        """

        def upload(txn: Transaction) -> KeysState | NotCurrent:
            current = _select_version(txn, user_id, None)
            if current is None or current.version != version:
                return NotCurrent(None if current is None else current.version)
            by_room: dict[str, list[UploadedKey]] = defaultdict(list)
            for uploaded in keys:
                by_room[uploaded.room_id].append(uploaded)
            rows: list[tuple[Any, ...]] = []
            added = 0
            for room_id, uploads in by_room.items():
                stored = _stored_ranks(txn, user_id, version, room_id, uploads)
                for uploaded in uploads:
                    rank = stored.get(uploaded.session_id)
                    if rank is None:
                        added += 1
                    elif not replaces(uploaded.key, rank):
                        continue
                    key = uploaded.key
                    rows.append(
                        (
                            user_id,
                            version,
                            room_id,
                            uploaded.session_id,
                            key.first_message_index,
                            key.forwarded_count,
                            key.is_verified,
                            _encode(key.session_data),
                        )
                    )
            if not rows:
                return KeysState(etag=current.etag, count=current.count)
            txn.executemany(
                "INSERT INTO room_key_backup_keys (user_id, version, room_id, session_id,"
                " first_message_index, forwarded_count, is_verified, session_data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET"
                " first_message_index = excluded.first_message_index,"
                " forwarded_count = excluded.forwarded_count,"
                " is_verified = excluded.is_verified, session_data = excluded.session_data",
                rows,
            )
            return _bump(txn, user_id, current, added)

        return await self._db.run_interaction("upload_backup_keys", upload)

    async def get_keys(
        self,
        user_id: str,
        version: int,
        room_id: str | None = None,
        session_id: str | None = None,
    ) -> KeysByRoom | None:
        """The keys of ``version`` (of one room, of one session); None if the version
        does not exist or was deleted."""

        def read(txn: Transaction) -> KeysByRoom | None:
            if _select_version(txn, user_id, version) is None:
                return None
            where, args = _key_filter(user_id, version, room_id, session_id)
            txn.execute(
                "SELECT room_id, session_id, first_message_index, forwarded_count,"
                f" is_verified, session_data FROM room_key_backup_keys WHERE {where}",
                args,
            )
            found: KeysByRoom = {}
            for room, session, first_index, forwarded, verified, data in txn.fetchall():
                found.setdefault(room, {})[session] = RoomKey(
                    first_message_index=int(first_index),
                    forwarded_count=int(forwarded),
                    is_verified=bool(verified),
                    session_data=json.loads(data),
                )
            return found

        return await self._db.run_read("get_backup_keys", read)

    async def delete_keys(
        self,
        user_id: str,
        version: int,
        room_id: str | None = None,
        session_id: str | None = None,
    ) -> KeysState | None:
        """Delete the keys of ``version`` (of one room, of one session); None if the
        version does not exist or was deleted.  The etag moves only if a key went."""

        def delete(txn: Transaction) -> KeysState | None:
            current = _select_version(txn, user_id, version)
            if current is None:
                return None
            where, args = _key_filter(user_id, version, room_id, session_id)
            txn.execute(f"DELETE FROM room_key_backup_keys WHERE {where}", args)
            removed = max(txn.rowcount, 0)
            if removed == 0:
                return KeysState(etag=current.etag, count=current.count)
            return _bump(txn, user_id, current, -removed)

        return await self._db.run_interaction("delete_backup_keys", delete)

    async def delete_all_for_user(self, user_id: str) -> None:
        """Forget every backup of ``user_id`` (account deactivation)."""

        def delete(txn: Transaction) -> None:
            txn.execute("DELETE FROM room_key_backup_keys WHERE user_id = ?", (user_id,))
            txn.execute(
                "UPDATE room_key_backup_versions SET deleted = ?, auth_data = '{}',"
                " key_count = 0, etag = etag + 1 WHERE user_id = ? AND NOT deleted",
                (True, user_id),
            )

        await self._db.run_interaction("delete_user_backups", delete)


def _stored_ranks(
    txn: Transaction, user_id: str, version: int, room_id: str, uploads: Sequence[UploadedKey]
) -> dict[str, KeyRank]:
    """The ranks of the keys already stored for the sessions of ``uploads``."""
    ranks: dict[str, KeyRank] = {}
    session_ids = [uploaded.session_id for uploaded in uploads]
    for start in range(0, len(session_ids), _CHUNK):
        part = session_ids[start : start + _CHUNK]
        txn.execute(
            "SELECT session_id, is_verified, first_message_index, forwarded_count"
            " FROM room_key_backup_keys WHERE user_id = ? AND version = ? AND room_id = ?"
            f" AND session_id IN ({','.join('?' * len(part))})",
            (user_id, version, room_id, *part),
        )
        for session_id, verified, first_index, forwarded in txn.fetchall():
            ranks[session_id] = KeyRank(bool(verified), int(first_index), int(forwarded))
    return ranks


def _key_filter(
    user_id: str, version: int, room_id: str | None, session_id: str | None
) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause on a prefix of the keys' primary key."""
    where = "user_id = ? AND version = ?"
    args: tuple[Any, ...] = (user_id, version)
    if room_id is not None:
        where += " AND room_id = ?"
        args += (room_id,)
        if session_id is not None:
            where += " AND session_id = ?"
            args += (session_id,)
    return where, args
