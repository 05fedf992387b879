"""The media repository's services built in-process for tests: a real database (the
``db`` fixture, both engines), a real :class:`FilesystemBackend` under ``tmp_path``,
real :class:`MediaThreads` on the global reactor, and a
``twisted.internet.task.Clock`` for the time the services read.

Time and threads are separate on purpose: ``MediaThreads`` hands results back
through the real reactor (``callFromThread``), which a fake clock cannot do, while
every timestamp the services record comes from :class:`homeserver.clock.Clock`,
which only needs ``seconds()``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
from pathlib import Path

import attrs
from PIL import Image
from twisted.internet import task

from homeserver import errors
from homeserver.clock import Clock
from homeserver.config.media import MediaConfig
from homeserver.errors import MatrixError
from homeserver.media.backends.filesystem import TEMP_DIR_NAME, FilesystemBackend
from homeserver.media.maintenance import MediaMaintenance
from homeserver.media.remote import FetchedMedia, RemoteMediaCache, RemoteMediaSource
from homeserver.media.repository import MediaRepository
from homeserver.media.spool import HEAD_SIZE, SpooledFile
from homeserver.media.threads import MediaThreads
from homeserver.media.thumbnails import ThumbnailService, ThumbnailSource
from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from homeserver.storage.media import MediaStore

SERVER = "example.org"
REMOTE = "remote.example"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"
ADMIN = "@admin:example.org"
#: When the fake clock starts, in seconds since the epoch.
START = 1_700_000_000
MAX_SIZE = 10 * 1024 * 1024


def spooled_file(directory: Path, data: bytes) -> SpooledFile:
    """``data`` as a finished upload in ``directory`` (a backend's ``temp_dir()``),
    as :class:`~homeserver.media.spool.UploadSpool` leaves one."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"upload-{os.urandom(8).hex()}"
    path.write_bytes(data)
    return SpooledFile(path, len(data), hashlib.sha256(data).hexdigest(), data[:HEAD_SIZE])


def png(width: int = 100, height: int = 80) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def stored_files(root: Path) -> list[str]:
    """Every file under a filesystem backend's root, as keys (temporary files aside)."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and path.relative_to(root).parts[0] != TEMP_DIR_NAME
    )


@attrs.frozen
class RemoteFile:
    data: bytes
    content_type: str | None = None
    upload_name: str | None = None


class DictSource(RemoteMediaSource):
    """Remote media served from a dict, counting the fetches per file.

    This stands in at the federation boundary: the federation client that will
    download ``mxc://`` media from other servers is not built yet, and
    :class:`RemoteMediaSource` is the interface it will implement.  Everything
    behind this boundary (the cache, its database rows, the backend) is real.
    Answers as the interface says, a reactor turn later: 404 for unknown media,
    502 ``M_TOO_LARGE`` past ``max_size``.
    """

    def __init__(self, temp_dir: Path) -> None:
        self._temp_dir = temp_dir
        self.files: dict[tuple[str, str], RemoteFile] = {}
        self.fetches: Counter[tuple[str, str]] = Counter()

    def add(
        self,
        origin: str,
        media_id: str,
        data: bytes,
        content_type: str | None = None,
        upload_name: str | None = None,
    ) -> None:
        self.files[(origin, media_id)] = RemoteFile(data, content_type, upload_name)

    async def fetch(self, origin: str, media_id: str, *, max_size: int) -> FetchedMedia:
        self.fetches[(origin, media_id)] += 1
        # Like a download, answers later (never before the caller can wait for it).
        await task.deferLater(installed_reactor(), 0, lambda: None)
        remote = self.files.get((origin, media_id))
        if remote is None:
            raise errors.not_found(f"{origin} has no media {media_id}")
        if len(remote.data) > max_size:
            raise MatrixError(502, errors.Codes.TOO_LARGE, "Remote media is too large")
        return FetchedMedia(
            file=spooled_file(self._temp_dir, remote.data),
            content_type=remote.content_type,
            upload_name=remote.upload_name,
        )


@attrs.frozen
class Media:
    """One process's media services, on a fake clock."""

    clock: task.Clock
    root: Path
    store: MediaStore
    backend: FilesystemBackend
    repository: MediaRepository
    thumbnails: ThumbnailService
    remote: RemoteMediaCache
    maintenance: MediaMaintenance
    source: DictSource

    def advance_ms(self, ms: int) -> None:
        self.clock.advance(ms / 1000)

    def now_ms(self) -> int:
        return Clock(self.clock).time_msec()

    async def upload(
        self, data: bytes, content_type: str | None = "application/octet-stream", user: str = ALICE
    ) -> str:
        """Upload ``data`` as ``user``; the new media ID."""
        uri = await self.repository.upload(
            user, spooled_file(self.backend.temp_dir(), data), content_type, "file.bin"
        )
        return uri.rsplit("/", 1)[1]

    async def local_thumbnail_source(self, media_id: str) -> ThumbnailSource:
        file = await self.repository.open_local(media_id, timeout_ms=0)
        return ThumbnailSource(
            origin=SERVER,
            media_id=media_id,
            content_type=file.content_type,
            file=file,
        )

    async def remote_thumbnail_source(self, origin: str, media_id: str) -> ThumbnailSource:
        file = await self.remote.open(origin, media_id)
        return ThumbnailSource(
            origin=origin,
            media_id=media_id,
            content_type=file.content_type,
            file=file,
        )


def shared_threads() -> MediaThreads:
    """A pool for a test session (stopped with the reactor, which ``MediaThreads``
    arranges): a pool per test would leave its idle threads behind."""
    return MediaThreads(installed_reactor())


def build_media(
    db: Database,
    threads: MediaThreads,
    root: Path,
    config: MediaConfig | None = None,
    store: MediaStore | None = None,
    max_size: int = MAX_SIZE,
) -> Media:
    """The services wired as :func:`homeserver.media.assembly.build_media` wires
    them, but with a fake clock, the test's own thread pool and a :class:`DictSource`."""
    config = config or MediaConfig()
    reactor = installed_reactor()
    clock = task.Clock()
    clock.advance(START)
    time = Clock(clock)
    store = store or MediaStore(db)
    backend = FilesystemBackend(root, threads)
    source = DictSource(backend.temp_dir())
    thumbnails = ThumbnailService(
        server_name=SERVER, config=config, store=store, backend=backend, threads=threads
    )
    return Media(
        clock=clock,
        root=root,
        store=store,
        backend=backend,
        repository=MediaRepository(
            server_name=SERVER,
            reactor=reactor,
            clock=time,
            config=config,
            store=store,
            backend=backend,
            threads=threads,
        ),
        thumbnails=thumbnails,
        remote=RemoteMediaCache(
            clock=time, store=store, backend=backend, source=source, max_size=max_size
        ),
        maintenance=MediaMaintenance(
            server_name=SERVER,
            reactor=reactor,
            clock=time,
            config=config,
            store=store,
            backend=backend,
            thumbnails=thumbnails,
        ),
        source=source,
    )
