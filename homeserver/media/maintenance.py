"""Keeping the media store in order: admin actions (quarantine, delete, listing,
purging the remote cache) and the periodic jobs (expired ``/create`` reservations,
``media_retention``, last-access times).

The admin API is Synapse's (``/_synapse/admin/v1/media/...``), so its tools work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from twisted.internet import defer, task

from homeserver.clock import Clock
from homeserver.config.media import MediaConfig
from homeserver.media import keys
from homeserver.media.backends.base import MediaBackend
from homeserver.media.records import LocalMedia
from homeserver.media.repository import not_found
from homeserver.media.thumbnails import ThumbnailService
from homeserver.reactor import IServerReactor
from homeserver.storage.media import MediaStore

logger = logging.getLogger(__name__)

#: How often the periodic jobs run, and last-access times are written.
_PERIOD = 60.0


class MediaMaintenance:
    def __init__(
        self,
        *,
        server_name: str,
        reactor: IServerReactor,
        clock: Clock,
        config: MediaConfig,
        store: MediaStore,
        backend: MediaBackend,
        thumbnails: ThumbnailService,
    ) -> None:
        self._server_name = server_name
        self._reactor = reactor
        self._clock = clock
        self._config = config
        self._store = store
        self._backend = backend
        self._thumbnails = thumbnails
        #: Media served since the last flush (this process), for retention.
        self._accessed_local: set[str] = set()
        self._accessed_remote: set[tuple[str, str]] = set()
        self._loop: task.LoopingCall | None = None
        #: More work for the same minute timer (e.g. dropping expired URL previews).
        self.periodic_jobs: list[Callable[[], Awaitable[object]]] = []

    # -- access times --------------------------------------------------------------

    def note_access(self, origin: str, media_id: str) -> None:
        if origin == self._server_name:
            self._accessed_local.add(media_id)
        else:
            self._accessed_remote.add((origin, media_id))

    async def flush_access(self) -> None:
        local, self._accessed_local = self._accessed_local, set()
        remote, self._accessed_remote = self._accessed_remote, set()
        now = self._clock.time_msec()
        await self._store.touch_local(sorted(local), now)
        await self._store.touch_remote(sorted(remote), now)

    # -- admin -----------------------------------------------------------------------

    async def quarantine(self, origin: str, media_id: str, by: str | None) -> None:
        """Stop serving (``by`` an admin) or serve again (``by`` None); 404 if unknown."""
        if origin == self._server_name:
            found = await self._store.set_local_quarantine(media_id, by)
        else:
            found = await self._store.set_remote_quarantine(origin, media_id, by)
        if not found:
            raise not_found()

    async def delete(self, origin: str, media_id: str) -> None:
        """Delete media and its thumbnails, record and bytes; 404 if unknown."""
        if origin == self._server_name:
            thumbnails = await self._store.delete_local(origin, media_id)
            content_key = keys.local_content(media_id)
        else:
            thumbnails = await self._store.delete_remote(origin, media_id)
            content_key = keys.remote_content(origin, media_id)
        if thumbnails is None:
            raise not_found()
        # The record is gone first, so nothing serves the bytes while they go.
        for key in [content_key, *self._thumbnails.thumbnail_keys(origin, media_id, thumbnails)]:
            await self._backend.delete(key)

    async def local_media(self, server_name: str, media_id: str) -> LocalMedia:
        """The record of one local media item, quarantined or not; 404 if unknown."""
        media = None
        if server_name == self._server_name:
            media = await self._store.get_local(media_id)
        if media is None:
            raise not_found()
        return media

    async def list_user_media(
        self, user_id: str, *, offset: int, limit: int, newest_first: bool
    ) -> tuple[list[LocalMedia], int]:
        return await self._store.list_user_media(
            user_id, offset=offset, limit=limit, newest_first=newest_first
        )

    async def purge_remote_cache(self, before_ms: int) -> int:
        """Delete cached remote media not used since ``before_ms``; how many."""
        deleted = 0
        while True:
            batch = await self._store.remote_media_before(before_ms)
            if not batch:
                return deleted
            for media in batch:
                await self.delete(media.origin, media.media_id)
                deleted += 1

    # -- periodic jobs -----------------------------------------------------------------

    def start(self) -> None:
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self._run_periodic()))
        self._loop.clock = self._reactor
        self._loop.start(_PERIOD, now=False).addErrback(
            lambda failure: logger.error("media jobs stopped: %s", failure.getErrorMessage())
        )

    async def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        await self.flush_access()

    async def _run_periodic(self) -> None:
        try:
            await self.flush_access()
            await self.expire_reservations()
            await self.apply_retention()
            for job in self.periodic_jobs:
                await job()
        except Exception:
            logger.exception("media maintenance failed; trying again next time")

    async def expire_reservations(self) -> int:
        expired = await self._store.expired_pending(self._clock.time_msec())
        for media_id in expired:
            await self._store.delete_local(self._server_name, media_id)
        return len(expired)

    async def apply_retention(self) -> int:
        """``media_retention``: delete local and cached remote media unused for longer
        than their lifetimes; how many were deleted."""
        now = self._clock.time_msec()
        deleted = 0
        if self._config.remote_media_lifetime_ms is not None:
            deleted += await self.purge_remote_cache(now - self._config.remote_media_lifetime_ms)
        if self._config.local_media_lifetime_ms is not None:
            before = now - self._config.local_media_lifetime_ms
            while batch := await self._store.local_media_older_than(before):
                for media_id in batch:
                    await self.delete(self._server_name, media_id)
                    deleted += 1
        return deleted
