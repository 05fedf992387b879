"""Local media: uploads (direct and asynchronous) and finding what to serve.

spec: client-server-api/modules/content_repo.md; the endpoints in
data/api/client-server/content-repo.yaml (``/upload``, ``/create``) and
authed-content-repo.yaml (``/download``)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
from twisted.internet import defer

from homeserver import errors
from homeserver.clock import Clock
from homeserver.config.media import MediaConfig
from homeserver.errors import Codes, MatrixError
from homeserver.media import keys
from homeserver.media.audio import duration_ms
from homeserver.media.backends.base import MediaBackend
from homeserver.media.content_types import recorded_content_type
from homeserver.media.ids import mxc_uri, new_media_id
from homeserver.media.records import LocalMedia, UploadedFile
from homeserver.media.spool import SpooledFile
from homeserver.media.threads import MediaThreads
from homeserver.media.thumbnailer import ImageTooLarge, NotAnImage, probe_image
from homeserver.reactor import IServerReactor
from homeserver.storage.media import MediaStore

logger = logging.getLogger(__name__)

#: The longest a download waits for an asynchronous upload (``timeout_ms``).
MAX_WAIT_MS = 60_000
DEFAULT_WAIT_MS = 20_000
#: How often a waiting download looks in the database (another process may have
#: taken the upload).
_POLL_INTERVAL = 1.0


@attrs.frozen
class MediaFile:
    """A file ready to serve."""

    path: Path
    content_type: str
    upload_name: str | None
    size: int
    sha256: str | None


@attrs.frozen
class Created:
    media_id: str
    content_uri: str
    unused_expires_at: int


def not_found() -> MatrixError:
    return errors.not_found("Media not found")


def not_yet_uploaded() -> MatrixError:
    return MatrixError(504, Codes.NOT_YET_UPLOADED, "The media has not been uploaded yet")


class MediaRepository:
    """Local media: owns the rows in ``local_media`` and the bytes under
    ``local_content/``.

    ``on_uploaded`` callbacks get each new upload's media ID and what it is (the
    thumbnailer makes the preset sizes from them, in the background).
    """

    def __init__(
        self,
        *,
        server_name: str,
        reactor: IServerReactor,
        clock: Clock,
        config: MediaConfig,
        store: MediaStore,
        backend: MediaBackend,
        threads: MediaThreads,
    ) -> None:
        self._server_name = server_name
        self._reactor = reactor
        self._clock = clock
        self._config = config
        self._store = store
        self._backend = backend
        self._threads = threads
        #: Downloads waiting for an asynchronous upload, by media ID (this process
        #: only; other processes' uploads are found by polling).
        self._upload_waiters: dict[str, list[defer.Deferred[None]]] = {}
        self.on_uploaded: list[Callable[[str, UploadedFile], Awaitable[None]]] = []
        #: Media IDs whose ``PUT /upload`` is storing bytes in this process: a second
        #: one at the same time would overwrite the first's bytes.
        self._uploading: set[str] = set()

    @property
    def server_name(self) -> str:
        return self._server_name

    def temp_dir(self) -> Path:
        """Where uploads are written as they arrive (beside the stored files)."""
        return self._backend.temp_dir()

    # -- uploading ---------------------------------------------------------------

    async def check_upload_quota(self, user_id: str, size: int) -> None:
        """403 ``M_FORBIDDEN`` if ``size`` more bytes would take ``user_id`` past a
        ``media_upload_limits`` entry (spec: security considerations)."""
        now = self._clock.time_msec()
        for limit in self._config.upload_limits:
            used = await self._store.bytes_uploaded_since(user_id, now - limit.time_period_ms)
            if used + size > limit.max_size:
                raise errors.forbidden(
                    f"Upload would exceed your limit of {limit.max_size} bytes per "
                    f"{limit.time_period_ms // 1000} seconds"
                )

    async def upload(
        self,
        user_id: str,
        spooled: SpooledFile,
        declared_type: str | None,
        upload_name: str | None,
        *,
        url_cache: str | None = None,
    ) -> str:
        """Store a complete upload as new media; its ``mxc://`` URI."""
        media_id = new_media_id()
        uploaded = await self._put_bytes(media_id, spooled, declared_type, upload_name)
        await self._store.store_uploaded(
            media_id, user_id, self._clock.time_msec(), uploaded, url_cache=url_cache
        )
        await self._announce(media_id, uploaded)
        return mxc_uri(self._server_name, media_id)

    async def create(self, user_id: str) -> Created:
        """Reserve a media ID for a later ``PUT /upload`` (``POST /create``)."""
        now = self._clock.time_msec()
        expires = now + self._config.unused_expiration_time_ms
        media_id = new_media_id()
        if not await self._store.create_pending(
            media_id, user_id, now, expires, self._config.max_pending_media_uploads
        ):
            raise MatrixError(
                429,
                Codes.LIMIT_EXCEEDED,
                "Too many media IDs are waiting for their uploads; upload to those first",
            )
        return Created(media_id, mxc_uri(self._server_name, media_id), expires)

    async def upload_to(
        self,
        user_id: str,
        media_id: str,
        spooled: SpooledFile,
        declared_type: str | None,
        upload_name: str | None,
    ) -> None:
        """The bytes for a media ID from ``/create`` (``PUT /upload/{server}/{id}``)."""
        existing = await self._store.get_local(media_id)
        now = self._clock.time_msec()
        if existing is None or (
            existing.uploaded_ts is None
            and existing.expires_ts is not None
            and existing.expires_ts <= now
        ):
            raise not_found()
        if existing.user_id != user_id:
            raise errors.forbidden("This media ID was not created by you")
        if existing.uploaded_ts is not None or media_id in self._uploading:
            raise MatrixError(409, Codes.CANNOT_OVERWRITE_MEDIA, "Media already uploaded")
        self._uploading.add(media_id)
        try:
            uploaded = await self._put_bytes(media_id, spooled, declared_type, upload_name)
            completed = await self._store.complete_pending(
                media_id, user_id, self._clock.time_msec(), uploaded
            )
        finally:
            self._uploading.discard(media_id)
        if not completed:
            # Expired (and dropped) while the bytes were being stored.
            await self._backend.delete(keys.local_content(media_id))
            raise not_found()
        await self._announce(media_id, uploaded)

    async def _put_bytes(
        self,
        media_id: str,
        spooled: SpooledFile,
        declared_type: str | None,
        upload_name: str | None,
    ) -> UploadedFile:
        content_type = recorded_content_type(declared_type, spooled.head)
        width = height = None
        if content_type.startswith("image/"):
            try:
                info = await self._threads.run(
                    probe_image, spooled.path, max_pixels=self._config.max_image_pixels
                )
            except (NotAnImage, ImageTooLarge):
                pass  # stored all the same; it just gets no thumbnails
            else:
                width, height = info.width, info.height
        duration = None
        if content_type.startswith(("audio/", "video/")):
            duration = await self._threads.run(duration_ms, spooled.path)
        await self._backend.store(keys.local_content(media_id), spooled.path)
        return UploadedFile(
            content_type=content_type,
            upload_name=upload_name,
            size=spooled.size,
            sha256=spooled.sha256,
            width=width,
            height=height,
            duration_ms=duration,
        )

    async def _announce(self, media_id: str, uploaded: UploadedFile) -> None:
        for waiter in self._upload_waiters.pop(media_id, []):
            waiter.callback(None)
        for callback in self.on_uploaded:
            try:
                await callback(media_id, uploaded)
            except Exception:
                logger.exception("after upload of %s", media_id)

    async def get_record(self, media_id: str) -> LocalMedia | None:
        """The stored record of ``media_id`` as it is (pending, quarantined or not)."""
        return await self._store.get_local(media_id)

    # -- serving -----------------------------------------------------------------

    async def get_media(self, media_id: str, *, timeout_ms: int = DEFAULT_WAIT_MS) -> LocalMedia:
        """The uploaded, unquarantined media ``media_id``, waiting up to
        ``timeout_ms`` for an asynchronous upload; 404, or 504
        ``M_NOT_YET_UPLOADED`` once the wait is over."""
        media = await self._store.get_local(media_id)
        deadline = self._clock.time_msec() + min(max(timeout_ms, 0), MAX_WAIT_MS)
        while media is not None and media.uploaded_ts is None:
            now = self._clock.time_msec()
            if media.expires_ts is not None and media.expires_ts <= now:
                raise not_found()
            if now >= deadline:
                raise not_yet_uploaded()
            await self._wait_for_upload(media_id, min(_POLL_INTERVAL, (deadline - now) / 1000))
            media = await self._store.get_local(media_id)
        if media is None or media.quarantined_by is not None:
            raise not_found()
        return media

    async def _wait_for_upload(self, media_id: str, seconds: float) -> None:
        waiter: defer.Deferred[None] = defer.Deferred()
        self._upload_waiters.setdefault(media_id, []).append(waiter)
        timer = self._reactor.callLater(seconds, waiter.callback, None)
        try:
            await waiter
        finally:
            if timer.active():
                timer.cancel()
            waiting = self._upload_waiters.get(media_id)
            if waiting is not None and waiter in waiting:
                waiting.remove(waiter)
                if not waiting:
                    del self._upload_waiters[media_id]

    async def open_local(self, media_id: str, *, timeout_ms: int = DEFAULT_WAIT_MS) -> MediaFile:
        """The file of local media ``media_id`` (see :meth:`get_media`)."""
        media = await self.get_media(media_id, timeout_ms=timeout_ms)
        path = await self._backend.local_file(keys.local_content(media_id))
        if path is None:
            logger.error("media %s is recorded but its file is missing", media_id)
            raise not_found()
        return MediaFile(
            path=path,
            content_type=media.content_type or "application/octet-stream",
            upload_name=media.upload_name,
            size=media.size or 0,
            sha256=media.sha256,
        )
