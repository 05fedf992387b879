"""Finding the file to serve for a download or thumbnail request, local or remote.

spec: client-server-api/modules/content_repo.md (GET /_matrix/client/v1/media/
download and /thumbnail)
"""

from __future__ import annotations

from typing import Any, Protocol

from homeserver.config.media import ThumbnailMethod
from homeserver.media.maintenance import MediaMaintenance
from homeserver.media.remote import RemoteMediaCache
from homeserver.media.repository import MediaFile, MediaRepository
from homeserver.media.thumbnails import ThumbnailService, ThumbnailSource


class UrlPreviews(Protocol):
    """``GET /preview_url`` (homeserver/media/preview/previewer.py)."""

    async def preview(self, url: str) -> dict[str, Any]: ...


class MediaServer:
    def __init__(
        self,
        *,
        repository: MediaRepository,
        remote: RemoteMediaCache,
        thumbnails: ThumbnailService,
        maintenance: MediaMaintenance,
    ) -> None:
        self._repository = repository
        self._remote = remote
        self._thumbnails = thumbnails
        self._maintenance = maintenance

    async def download(self, server_name: str, media_id: str, *, timeout_ms: int) -> MediaFile:
        media = await self._open(server_name, media_id, timeout_ms)
        self._maintenance.note_access(server_name, media_id)
        return media

    async def _open(self, server_name: str, media_id: str, timeout_ms: int) -> MediaFile:
        if server_name == self._repository.server_name:
            return await self._repository.open_local(media_id, timeout_ms=timeout_ms)
        return await self._remote.open(server_name, media_id)

    async def info(self, server_name: str, media_id: str, *, timeout_ms: int) -> dict[str, Any]:
        """What a client puts in an event's ``info`` (``mimetype``, ``size``, ``w``,
        ``h``, ``duration``) and the file's name, without downloading it.

        spec: client-server-api/modules/instant_messaging.md (m.image, m.audio,
        m.video and m.file ``info``)
        """
        if server_name == self._repository.server_name:
            local = await self._repository.get_media(media_id, timeout_ms=timeout_ms)
            fields: dict[str, Any] = {
                "mimetype": local.content_type,
                "size": local.size,
                "name": local.upload_name,
                "w": local.width,
                "h": local.height,
                "duration": local.duration_ms,
            }
        else:
            remote = await self._remote.get_media(server_name, media_id)
            fields = {
                "mimetype": remote.content_type,
                "size": remote.size,
                "name": remote.upload_name,
                "w": remote.width,
                "h": remote.height,
            }
        return {key: value for key, value in fields.items() if value is not None}

    async def thumbnail(
        self,
        server_name: str,
        media_id: str,
        *,
        width: int,
        height: int,
        method: ThumbnailMethod,
        animated: bool,
        timeout_ms: int,
    ) -> MediaFile:
        file = await self._open(server_name, media_id, timeout_ms)
        source = ThumbnailSource(
            origin=server_name, media_id=media_id, content_type=file.content_type, file=file
        )
        made = await self._thumbnails.thumbnail(source, width, height, method, animated)
        self._maintenance.note_access(server_name, media_id)
        return made
