"""Media metadata: SQL only.

Owns ``local_media``, ``remote_media_cache`` and ``media_thumbnails``
(schema/0023_media.sql).  The bytes themselves are in a storage backend.

spec: client-server-api/modules/content_repo.md
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from homeserver.media.records import LocalMedia, RemoteMedia, ThumbnailRecord, UploadedFile
from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction

_LOCAL_COLUMNS = (
    "media_id, user_id, created_ts, uploaded_ts, expires_ts, content_type, upload_name,"
    " size, sha256, width, height, quarantined_by, url_cache, last_access_ts, duration_ms"
)
_REMOTE_COLUMNS = (
    "origin, media_id, content_type, upload_name, size, sha256, width, height, created_ts,"
    " last_access_ts, quarantined_by"
)


def _local(row: Sequence[object]) -> LocalMedia:
    return LocalMedia(*row)  # type: ignore[arg-type]


def _remote(row: Sequence[object]) -> RemoteMedia:
    return RemoteMedia(*row)  # type: ignore[arg-type]


class MediaStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # -- local media ---------------------------------------------------------

    async def create_pending(
        self, media_id: str, user_id: str, now_ms: int, expires_ts: int, max_pending: int
    ) -> bool:
        """Reserve ``media_id`` for a later upload by ``user_id``; False (nothing
        stored) when the user already has ``max_pending`` unexpired reservations."""

        def create(txn: Transaction) -> bool:
            txn.execute(
                "SELECT COUNT(*) FROM local_media WHERE user_id = ? AND uploaded_ts IS NULL"
                " AND expires_ts > ?",
                (user_id, now_ms),
            )
            row = txn.fetchone()
            if row is not None and int(row[0]) >= max_pending:
                return False
            txn.execute(
                "INSERT INTO local_media (media_id, user_id, created_ts, expires_ts)"
                " VALUES (?, ?, ?, ?)",
                (media_id, user_id, now_ms, expires_ts),
            )
            return True

        return await self._db.run_interaction("create_pending_media", create)

    async def store_uploaded(
        self,
        media_id: str,
        user_id: str,
        now_ms: int,
        upload: UploadedFile,
        *,
        url_cache: str | None = None,
    ) -> None:
        """Record media whose bytes are already in the backend (``POST /upload``)."""
        await self._db.execute(
            "store_uploaded_media",
            "INSERT INTO local_media (media_id, user_id, created_ts, uploaded_ts, content_type,"
            " upload_name, size, sha256, width, height, duration_ms, url_cache)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            media_id,
            user_id,
            now_ms,
            now_ms,
            upload.content_type,
            upload.upload_name,
            upload.size,
            upload.sha256,
            upload.width,
            upload.height,
            upload.duration_ms,
            url_cache,
        )

    async def complete_pending(
        self, media_id: str, user_id: str, now_ms: int, upload: UploadedFile
    ) -> bool:
        """Fill in a reserved ID (``PUT /upload``); False when it was not reserved by
        ``user_id``, has expired, or already has its bytes (whoever got there first
        wins: the condition is in the UPDATE itself)."""
        rows = await self._db.execute(
            "complete_pending_media",
            "UPDATE local_media SET uploaded_ts = ?, expires_ts = NULL, content_type = ?,"
            " upload_name = ?, size = ?, sha256 = ?, width = ?, height = ?, duration_ms = ?"
            " WHERE media_id = ? AND user_id = ? AND uploaded_ts IS NULL AND expires_ts > ?"
            " RETURNING media_id",
            now_ms,
            upload.content_type,
            upload.upload_name,
            upload.size,
            upload.sha256,
            upload.width,
            upload.height,
            upload.duration_ms,
            media_id,
            user_id,
            now_ms,
        )
        return bool(rows)

    async def get_local(self, media_id: str) -> LocalMedia | None:
        rows = await self._db.execute_read(
            "get_local_media",
            f"SELECT {_LOCAL_COLUMNS} FROM local_media WHERE media_id = ?",
            media_id,
        )
        return _local(rows[0]) if rows else None

    async def touch_local(self, media_ids: Sequence[str], now_ms: int) -> None:
        """Note that these were served (batched by the caller; retention reads it)."""
        if not media_ids:
            return

        def write(txn: Transaction) -> None:
            txn.executemany(
                "UPDATE local_media SET last_access_ts = ? WHERE media_id = ?",
                [(now_ms, media_id) for media_id in media_ids],
            )

        await self._db.run_unsynced("touch_local_media", write)

    async def list_user_media(
        self, user_id: str, *, offset: int, limit: int, newest_first: bool = True
    ) -> tuple[list[LocalMedia], int]:
        """A page of ``user_id``'s uploads (URL-preview images excluded), and the total."""
        order = "DESC" if newest_first else "ASC"

        def read(txn: Transaction) -> tuple[list[LocalMedia], int]:
            txn.execute(
                f"SELECT {_LOCAL_COLUMNS} FROM local_media WHERE user_id = ?"
                " AND url_cache IS NULL AND uploaded_ts IS NOT NULL"
                f" ORDER BY created_ts {order}, media_id {order} LIMIT ? OFFSET ?",
                (user_id, limit, offset),
            )
            page = [_local(row) for row in txn.fetchall()]
            txn.execute(
                "SELECT COUNT(*) FROM local_media WHERE user_id = ? AND url_cache IS NULL"
                " AND uploaded_ts IS NOT NULL",
                (user_id,),
            )
            row = txn.fetchone()
            return page, int(row[0]) if row else 0

        return await self._db.run_read("list_user_media", read)

    async def bytes_uploaded_since(self, user_id: str, since_ms: int) -> int:
        """What ``user_id`` uploaded since ``since_ms`` (``media_upload_limits``)."""
        rows = await self._db.execute_read(
            "bytes_uploaded_since",
            "SELECT COALESCE(SUM(size), 0) FROM local_media WHERE user_id = ?"
            " AND created_ts > ? AND url_cache IS NULL",
            user_id,
            since_ms,
        )
        return int(rows[0][0])

    async def expired_pending(self, now_ms: int, limit: int = 500) -> list[str]:
        rows = await self._db.execute_read(
            "expired_pending_media",
            "SELECT media_id FROM local_media WHERE uploaded_ts IS NULL AND expires_ts <= ?"
            " LIMIT ?",
            now_ms,
            limit,
        )
        return [str(row[0]) for row in rows]

    async def local_media_older_than(self, before_ms: int, limit: int = 500) -> list[str]:
        """Uploaded, unquarantined media last used (or made) before ``before_ms``."""
        rows = await self._db.execute_read(
            "local_media_older_than",
            "SELECT media_id FROM local_media WHERE uploaded_ts IS NOT NULL"
            " AND quarantined_by IS NULL AND COALESCE(last_access_ts, created_ts) < ?"
            " LIMIT ?",
            before_ms,
            limit,
        )
        return [str(row[0]) for row in rows]

    async def delete_local(self, server_name: str, media_id: str) -> list[ThumbnailRecord] | None:
        """Forget ``media_id`` and its thumbnails (stored under ``server_name``, ours);
        the thumbnails it had (to delete their bytes), or None if there was no such
        media."""

        def delete(txn: Transaction) -> list[ThumbnailRecord] | None:
            txn.execute(
                "DELETE FROM local_media WHERE media_id = ? RETURNING media_id", (media_id,)
            )
            if txn.fetchone() is None:
                return None
            return _take_thumbnails(txn, server_name, media_id)

        return await self._db.run_interaction("delete_local_media", delete)

    async def set_local_quarantine(self, media_id: str, by: str | None) -> bool:
        rows = await self._db.execute(
            "quarantine_local_media",
            "UPDATE local_media SET quarantined_by = ? WHERE media_id = ? RETURNING media_id",
            by,
            media_id,
        )
        return bool(rows)

    # -- remote media cache ----------------------------------------------------

    async def get_remote(self, origin: str, media_id: str) -> RemoteMedia | None:
        rows = await self._db.execute_read(
            "get_remote_media",
            f"SELECT {_REMOTE_COLUMNS} FROM remote_media_cache WHERE origin = ? AND media_id = ?",
            origin,
            media_id,
        )
        return _remote(rows[0]) if rows else None

    async def store_remote(self, media: RemoteMedia) -> None:
        await self._db.execute(
            "store_remote_media",
            f"INSERT INTO remote_media_cache ({_REMOTE_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (origin, media_id) DO NOTHING",
            *attrs.astuple(media),
        )

    async def touch_remote(self, keys: Sequence[tuple[str, str]], now_ms: int) -> None:
        if not keys:
            return

        def write(txn: Transaction) -> None:
            txn.executemany(
                "UPDATE remote_media_cache SET last_access_ts = ? WHERE origin = ? AND media_id = ?",
                [(now_ms, origin, media_id) for origin, media_id in keys],
            )

        await self._db.run_unsynced("touch_remote_media", write)

    async def remote_media_before(self, before_ms: int, limit: int = 500) -> list[RemoteMedia]:
        """Cached remote media not used since ``before_ms`` (quarantined ones kept, so
        the quarantine outlives the cache), oldest first."""
        rows = await self._db.execute_read(
            "remote_media_before",
            f"SELECT {_REMOTE_COLUMNS} FROM remote_media_cache WHERE last_access_ts < ?"
            " AND quarantined_by IS NULL ORDER BY last_access_ts LIMIT ?",
            before_ms,
            limit,
        )
        return [_remote(row) for row in rows]

    async def delete_remote(self, origin: str, media_id: str) -> list[ThumbnailRecord] | None:
        def delete(txn: Transaction) -> list[ThumbnailRecord] | None:
            txn.execute(
                "DELETE FROM remote_media_cache WHERE origin = ? AND media_id = ?"
                " RETURNING media_id",
                (origin, media_id),
            )
            if txn.fetchone() is None:
                return None
            return _take_thumbnails(txn, origin, media_id)

        return await self._db.run_interaction("delete_remote_media", delete)

    async def set_remote_quarantine(self, origin: str, media_id: str, by: str | None) -> bool:
        rows = await self._db.execute(
            "quarantine_remote_media",
            "UPDATE remote_media_cache SET quarantined_by = ? WHERE origin = ? AND media_id = ?"
            " RETURNING media_id",
            by,
            origin,
            media_id,
        )
        return bool(rows)

    # -- thumbnails ------------------------------------------------------------

    async def get_thumbnails(self, origin: str, media_id: str) -> list[ThumbnailRecord]:
        rows = await self._db.execute_read(
            "get_thumbnails",
            "SELECT width, height, method, content_type, size, animated FROM media_thumbnails"
            " WHERE origin = ? AND media_id = ?",
            origin,
            media_id,
        )
        return [
            ThumbnailRecord(int(w), int(h), str(m), str(t), int(s), bool(a))
            for w, h, m, t, s, a in rows
        ]

    async def delete_thumbnail(
        self, origin: str, media_id: str, thumbnail: ThumbnailRecord
    ) -> None:
        await self._db.execute(
            "delete_thumbnail",
            "DELETE FROM media_thumbnails WHERE origin = ? AND media_id = ? AND width = ?"
            " AND height = ? AND method = ? AND content_type = ? AND animated = ?",
            origin,
            media_id,
            thumbnail.width,
            thumbnail.height,
            thumbnail.method,
            thumbnail.content_type,
            thumbnail.animated,
        )

    async def store_thumbnail(self, origin: str, media_id: str, thumbnail: ThumbnailRecord) -> None:
        """Record a thumbnail.  Not waiting for the disk: a thumbnail lost in a crash
        is made again on its next request."""

        def write(txn: Transaction) -> None:
            txn.execute(
                "INSERT INTO media_thumbnails (origin, media_id, width, height, method,"
                " content_type, size, animated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (origin, media_id, width, height, method, content_type, animated)"
                " DO UPDATE SET size = excluded.size",
                (
                    origin,
                    media_id,
                    thumbnail.width,
                    thumbnail.height,
                    thumbnail.method,
                    thumbnail.content_type,
                    thumbnail.size,
                    thumbnail.animated,
                ),
            )

        await self._db.run_unsynced("store_thumbnail", write)


def _take_thumbnails(txn: Transaction, origin: str, media_id: str) -> list[ThumbnailRecord]:
    """Delete the thumbnails of one media item and return what they were."""
    txn.execute(
        "DELETE FROM media_thumbnails WHERE origin = ? AND media_id = ?"
        " RETURNING width, height, method, content_type, size, animated",
        (origin, media_id),
    )
    return [
        ThumbnailRecord(int(w), int(h), str(m), str(t), int(s), bool(a))
        for w, h, m, t, s, a in txn.fetchall()
    ]
