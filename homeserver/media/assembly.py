"""Building the media repository from its config: storage backend, stores, and the
services the endpoints use.  One instance per process that serves media."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

import attrs
from twisted.internet import defer

from homeserver import __version__
from homeserver.clock import Clock
from homeserver.config.model import HomeServerConfig
from homeserver.http.outbound import OutboundHttpClient
from homeserver.media.backends.base import MediaBackend
from homeserver.media.backends.factory import build_backend
from homeserver.media.maintenance import MediaMaintenance
from homeserver.media.preview.previewer import UrlPreviewer
from homeserver.media.preview_images import MediaPreviewImages
from homeserver.media.records import UploadedFile
from homeserver.media.remote import NoFederation, RemoteMediaCache, RemoteMediaSource
from homeserver.media.repository import MediaRepository
from homeserver.media.serving import MediaServer, UrlPreviews
from homeserver.media.threads import MediaThreads
from homeserver.media.thumbnails import ThumbnailService, ThumbnailSource
from homeserver.reactor import IServerReactor
from homeserver.storage.database import Database
from homeserver.storage.media import MediaStore
from homeserver.storage.url_previews import UrlPreviewStore

logger = logging.getLogger(__name__)


@attrs.define
class MediaServices:
    threads: MediaThreads
    backend: MediaBackend
    store: MediaStore
    repository: MediaRepository
    thumbnails: ThumbnailService
    remote: RemoteMediaCache
    maintenance: MediaMaintenance
    server: MediaServer
    #: None unless ``url_preview_enabled``.
    previews: UrlPreviews | None = None
    outbound: OutboundHttpClient | None = None
    #: Work started by an upload that its response does not wait for (preset
    #: thumbnails); awaited at shutdown.
    background: set[defer.Deferred[None]] = attrs.field(factory=set)

    def run_in_background(self, work: Coroutine[Any, Any, None]) -> None:
        running: defer.Deferred[None] = defer.ensureDeferred(work)
        self.background.add(running)

        def done(result: object) -> None:
            self.background.discard(running)

        running.addErrback(lambda failure: logger.error("%s", failure.getTraceback()))
        running.addBoth(done)

    async def drain(self) -> None:
        """Wait for background work (preset thumbnails) to finish, and close the
        outbound connections."""
        while self.background:
            await defer.DeferredList(list(self.background), consumeErrors=True)
        if self.outbound is not None:
            await self.outbound.close()


def build_media(
    server_config: HomeServerConfig,
    *,
    reactor: IServerReactor,
    clock: Clock,
    database: Database,
    remote_source: RemoteMediaSource | None = None,
) -> MediaServices:
    server_name = server_config.server_name
    media_store_path = server_config.media_store_path
    max_upload_size = server_config.max_upload_size
    config = server_config.media
    threads = MediaThreads(reactor)
    backend = build_backend(media_store_path, config, threads)
    store = MediaStore(database)
    repository = MediaRepository(
        server_name=server_name,
        reactor=reactor,
        clock=clock,
        config=config,
        store=store,
        backend=backend,
        threads=threads,
    )
    thumbnails = ThumbnailService(
        server_name=server_name, config=config, store=store, backend=backend, threads=threads
    )
    remote = RemoteMediaCache(
        clock=clock,
        store=store,
        backend=backend,
        source=remote_source or NoFederation(),
        max_size=max_upload_size,
    )
    maintenance = MediaMaintenance(
        server_name=server_name,
        reactor=reactor,
        clock=clock,
        config=config,
        store=store,
        backend=backend,
        thumbnails=thumbnails,
    )
    services = MediaServices(
        threads=threads,
        backend=backend,
        store=store,
        repository=repository,
        thumbnails=thumbnails,
        remote=remote,
        maintenance=maintenance,
        server=MediaServer(
            repository=repository, remote=remote, thumbnails=thumbnails, maintenance=maintenance
        ),
    )

    async def make_presets(media_id: str, uploaded: UploadedFile) -> None:
        if not uploaded.content_type.startswith("image/") or uploaded.width is None:
            return

        async def make() -> None:
            file = await repository.open_local(media_id, timeout_ms=0)
            source = ThumbnailSource(
                origin=server_name,
                media_id=media_id,
                content_type=file.content_type,
                file=file,
            )
            await thumbnails.make_presets(source)

        services.run_in_background(make())

    repository.on_uploaded.append(make_presets)
    if config.url_preview.enabled:
        services.outbound = OutboundHttpClient(
            reactor,
            ip_blacklist=config.url_preview.ip_range_blacklist,
            ip_whitelist=config.url_preview.ip_range_whitelist,
            user_agent=f"homeserver/{__version__} (URL preview)",
        )
        preview_store = UrlPreviewStore(database)
        services.previews = UrlPreviewer(
            services.outbound,
            preview_store,
            clock,
            config.url_preview,
            MediaPreviewImages(repository, threads),
            threads=threads,
        )
        maintenance.periodic_jobs.append(lambda: preview_store.delete_expired(clock.time_msec()))
    return services
