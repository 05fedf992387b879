"""URL previews already made: SQL only.

Owns ``url_previews`` (schema/0023_media.sql): one row per previewed URL, holding the
preview (``og:*`` keys) or the Matrix error its fetch ended in, reused until
``expires_ts``.  Times are milliseconds.

spec: client-server-api/modules/content_repo.md (``GET /media/preview_url``)
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


@attrs.frozen
class CachedPreview:
    url: str
    fetched_ts: int
    expires_ts: int
    #: The preview, or None when the fetch failed ...
    preview: dict[str, Any] | None
    #: ... with this error (``status``, ``errcode``, ``error``), as the previewer put it.
    error: dict[str, Any] | None


class UrlPreviewStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, url: str, now_ms: int) -> CachedPreview | None:
        """The stored result for ``url`` if it has not expired by ``now_ms``."""
        rows = await self._db.execute_read(
            "get_url_preview",
            "SELECT fetched_ts, expires_ts, preview_json, error_json FROM url_previews"
            " WHERE url = ? AND expires_ts > ?",
            url,
            now_ms,
        )
        if not rows:
            return None
        fetched_ts, expires_ts, preview_json, error_json = rows[0]
        return CachedPreview(
            url=url,
            fetched_ts=int(fetched_ts),
            expires_ts=int(expires_ts),
            preview=json.loads(preview_json) if preview_json is not None else None,
            error=json.loads(error_json) if error_json is not None else None,
        )

    async def put(
        self,
        url: str,
        fetched_ts: int,
        expires_ts: int,
        preview: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> None:
        """Store the result of fetching ``url`` (a preview or an error), replacing any
        earlier one: two processes previewing the same URL at once both succeed."""
        if (preview is None) == (error is None):
            raise ValueError("a stored preview has exactly one of preview and error")
        await self._db.execute(
            "put_url_preview",
            "INSERT INTO url_previews (url, fetched_ts, expires_ts, preview_json, error_json)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (url) DO UPDATE SET fetched_ts = excluded.fetched_ts,"
            " expires_ts = excluded.expires_ts, preview_json = excluded.preview_json,"
            " error_json = excluded.error_json",
            url,
            fetched_ts,
            expires_ts,
            _json(preview),
            _json(error),
        )

    async def delete_expired(self, now_ms: int) -> int:
        """Drop the rows expired by ``now_ms``; how many there were."""

        def delete(txn: Transaction) -> int:
            txn.execute("DELETE FROM url_previews WHERE expires_ts <= ?", (now_ms,))
            return txn.rowcount

        return await self._db.run_interaction("delete_expired_url_previews", delete)


def _json(value: dict[str, Any] | None) -> str | None:
    # ensure_ascii (the default) escapes NUL too, which PostgreSQL text cannot hold.
    return json.dumps(value, separators=(",", ":")) if value is not None else None
