"""Media from other servers: fetched once through a :class:`RemoteMediaSource`, then
served from a local cache that ``media_retention.remote_media_lifetime`` bounds.

The source is the federation client's job (``GET /_matrix/federation/v1/media/
download``: federation/queries/media.py), handed over once federation is built
(:meth:`RemoteMediaCache.use_remote_source`); a server that does not federate has
none, and remote media is answered ``502`` with a message saying so.

spec: client-server-api/modules/content_repo.md (a homeserver fetches remote
content for its users), server-server-api.md#content-repository
"""

from __future__ import annotations

import logging
from typing import Protocol

import attrs

from homeserver import errors
from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.media import keys
from homeserver.media.backends.base import MediaBackend
from homeserver.media.content_types import recorded_content_type
from homeserver.media.records import RemoteMedia
from homeserver.media.repository import MediaFile, not_found
from homeserver.media.spool import SpooledFile
from homeserver.storage.media import MediaStore
from homeserver.util.single_flight import SingleFlight

logger = logging.getLogger(__name__)


@attrs.frozen
class FetchedMedia:
    """A remote file, downloaded into a local temporary file."""

    file: SpooledFile
    content_type: str | None
    upload_name: str | None


class RemoteMediaSource(Protocol):
    async def fetch(self, origin: str, media_id: str, *, max_size: int) -> FetchedMedia:
        """Download ``mxc://origin/media_id``.  Raises :class:`MatrixError`: 404 if
        the origin has no such media, 502 if it cannot be reached or answers badly,
        502 ``M_TOO_LARGE`` past ``max_size``."""


class NoFederation:
    """The source while this server does not federate: every fetch fails, clearly."""

    async def fetch(self, origin: str, media_id: str, *, max_size: int) -> FetchedMedia:
        raise MatrixError(
            502,
            errors.Codes.UNKNOWN,
            f"Cannot fetch media from {origin}: this server does not federate",
        )


class RemoteMediaCache:
    def __init__(
        self,
        *,
        clock: Clock,
        store: MediaStore,
        backend: MediaBackend,
        source: RemoteMediaSource,
        max_size: int,
    ) -> None:
        self._clock = clock
        self._store = store
        self._backend = backend
        self._source = source
        self._max_size = max_size
        self._fetching: SingleFlight[tuple[str, str], RemoteMedia] = SingleFlight()

    def use_remote_source(self, source: RemoteMediaSource) -> None:
        """Fetch remote media through ``source`` (federation is built after the
        homeserver's handlers: federation/assembly.py calls this)."""
        self._source = source

    async def get_media(self, origin: str, media_id: str) -> RemoteMedia:
        """The cached record of remote media, fetching it first if needed."""
        media = await self._store.get_remote(origin, media_id)
        if media is None:
            media = await self._fetching.run(
                (origin, media_id), lambda: self._fetch(origin, media_id)
            )
        if media.quarantined_by is not None:
            raise not_found()
        return media

    async def open(self, origin: str, media_id: str) -> MediaFile:
        media = await self.get_media(origin, media_id)
        key = keys.remote_content(origin, media_id)
        path = await self._backend.local_file(key)
        if path is None:
            # Recorded but evicted from storage by hand: forget it (and its
            # thumbnails, made of the bytes now gone) and fetch again.
            thumbnails = await self._store.delete_remote(origin, media_id)
            for record in thumbnails or []:
                await self._backend.delete(keys.thumbnail(origin, media_id, record, local=False))
            media = await self.get_media(origin, media_id)
            path = await self._backend.local_file(key)
            if path is None:
                raise not_found()
        return MediaFile(
            path=path,
            content_type=media.content_type or "application/octet-stream",
            upload_name=media.upload_name,
            size=media.size,
            sha256=media.sha256,
        )

    async def _fetch(self, origin: str, media_id: str) -> RemoteMedia:
        fetched = await self._source.fetch(origin, media_id, max_size=self._max_size)
        await self._backend.store(keys.remote_content(origin, media_id), fetched.file.path)
        now = self._clock.time_msec()
        media = RemoteMedia(
            origin=origin,
            media_id=media_id,
            content_type=recorded_content_type(fetched.content_type, fetched.file.head),
            upload_name=fetched.upload_name,
            size=fetched.file.size,
            sha256=fetched.file.sha256,
            width=None,
            height=None,
            created_ts=now,
            last_access_ts=now,
            quarantined_by=None,
        )
        await self._store.store_remote(media)
        stored = await self._store.get_remote(origin, media_id)
        return stored or media
