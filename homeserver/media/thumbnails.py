"""Thumbnails: made once, stored beside the media, served from then on.

The preset sizes (``thumbnail_sizes``, the spec's five by default) are made in the
background as soon as an image is uploaded, so the first client to show it finds
them ready.  A request is answered with the preset that best fits it (never
smaller than asked unless the image itself is); with ``dynamic_thumbnails`` the
exact size asked for is made on first request instead.  An image smaller than
the request is served as it is: thumbnails are never upscaled.

spec: client-server-api/modules/content_repo.md#thumbnails
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import attrs
from twisted.internet import defer

from homeserver import errors
from homeserver.config.media import MediaConfig, ThumbnailMethod, ThumbnailSize
from homeserver.errors import MatrixError
from homeserver.media import keys
from homeserver.media.backends.base import MediaBackend
from homeserver.media.records import ThumbnailRecord
from homeserver.media.repository import MediaFile
from homeserver.media.threads import MediaThreads
from homeserver.media.thumbnailer import (
    ImageInfo,
    ImageTooLarge,
    NotAnImage,
    Thumbnail,
    decode_for_sizes,
    make_thumbnail,
    preset_sizes_for,
    probe_image,
    select_thumbnail,
    thumbnail_dimensions,
    thumbnail_from,
)
from homeserver.storage.media import MediaStore
from homeserver.util.single_flight import SingleFlight

logger = logging.getLogger(__name__)


@attrs.frozen
class ThumbnailSource:
    """Media to make thumbnails of: where its bytes are and what it is."""

    origin: str
    media_id: str
    content_type: str
    file: MediaFile


def cannot_thumbnail(why: str) -> MatrixError:
    return MatrixError(400, errors.Codes.UNKNOWN, f"Cannot make a thumbnail: {why}")


class ThumbnailService:
    def __init__(
        self,
        *,
        server_name: str,
        config: MediaConfig,
        store: MediaStore,
        backend: MediaBackend,
        threads: MediaThreads,
    ) -> None:
        self._server_name = server_name
        self._config = config
        self._store = store
        self._backend = backend
        self._threads = threads
        #: Preset batches being made, by (origin, media ID), with who waits for them.
        self._batches: dict[tuple[str, str], list[defer.Deferred[None]]] = {}
        self._making: SingleFlight[tuple[str, str, int, int, str, bool], ThumbnailRecord] = (
            SingleFlight()
        )

    def _thumbnail_key(self, origin: str, media_id: str, record: ThumbnailRecord) -> str:
        return keys.thumbnail(origin, media_id, record, local=origin == self._server_name)

    async def probe(self, source: ThumbnailSource) -> ImageInfo:
        """What the image is; 400 if it is no image we can read, 413 if too large."""
        if not source.content_type.startswith("image/"):
            raise cannot_thumbnail(f"{source.content_type} is not an image")
        try:
            return await self._threads.run(
                probe_image, source.file.path, max_pixels=self._config.max_image_pixels
            )
        except ImageTooLarge:
            raise MatrixError(
                413, errors.Codes.TOO_LARGE, "The image is too large to make a thumbnail of"
            ) from None
        except NotAnImage:
            raise cannot_thumbnail("the file is not an image this server can read") from None

    async def make_presets(self, source: ThumbnailSource) -> None:
        """Make the configured preset sizes of a new image, all from one decode
        (errors are logged).  Requests for its thumbnails meanwhile wait for each
        size as it is stored rather than decoding the image again."""
        try:
            info = await self.probe(source)
        except MatrixError:
            return
        existing = {
            (record.width, record.height, record.method)
            for record in await self._store.get_thumbnails(source.origin, source.media_id)
            if not record.animated
        }
        wanted = [
            size
            for size in preset_sizes_for(info, self._config.thumbnail_sizes)
            if (
                *thumbnail_dimensions(
                    info.width, info.height, size.width, size.height, size.method
                ),
                size.method,
            )
            not in existing
        ]
        batch = (source.origin, source.media_id)
        if not wanted or batch in self._batches:
            return
        self._batches[batch] = []
        try:
            await self._make_batch(source, wanted)
        except MatrixError as refused:
            # A header that reads but pixels that do not: no size will work.
            logger.info(
                "no thumbnails of %s/%s: %s", source.origin, source.media_id, refused.message
            )
        except Exception:
            logger.exception("preset thumbnails of %s/%s", source.origin, source.media_id)
        finally:
            self._progress(batch, finished=True)

    async def _make_batch(self, source: ThumbnailSource, sizes: list[ThumbnailSize]) -> None:
        # Crops (avatars, a few ms each) first, then scales largest first (the
        # timeline's 800x600 before the rarer in-between sizes).
        sizes = sorted(sizes, key=lambda size: (size.method != "crop", -size.width * size.height))
        try:
            decoded = await self._threads.run(
                decode_for_sizes,
                source.file.path,
                [(size.width, size.height, size.method) for size in sizes],
                max_pixels=self._config.max_image_pixels,
            )
        except (ImageTooLarge, NotAnImage):
            raise cannot_thumbnail("the image cannot be decoded") from None
        temp_dir = self._backend.temp_dir()
        for size in sizes:
            destination = await self._threads.run(_temp_file, temp_dir)
            try:
                made = await self._threads.run(
                    thumbnail_from,
                    decoded,
                    destination,
                    width=size.width,
                    height=size.height,
                    method=size.method,
                )
            except (ImageTooLarge, NotAnImage):
                await self._threads.run(destination.unlink, missing_ok=True)
                raise cannot_thumbnail("the image cannot be decoded") from None
            await self._keep(source, made, destination, size.method, animated=False)
            self._progress((source.origin, source.media_id), finished=False)

    def _progress(self, batch: tuple[str, str], *, finished: bool) -> None:
        """Wake the requests waiting on a preset batch (one more size is stored, or
        it is over); those whose size is not there yet wait again."""
        waiters = self._batches.pop(batch, []) if finished else self._batches.get(batch, [])
        if not finished:
            self._batches[batch] = []
        for waiter in waiters:
            waiter.callback(None)

    async def _batch_step(self, origin: str, media_id: str) -> bool:
        """If a preset batch of this media is being made, wait for its next stored
        size (or its end) and answer True; else False at once."""
        waiters = self._batches.get((origin, media_id))
        if waiters is None:
            return False
        waiter: defer.Deferred[None] = defer.Deferred()
        waiters.append(waiter)
        await waiter
        return True

    async def thumbnail(
        self,
        source: ThumbnailSource,
        width: int,
        height: int,
        method: ThumbnailMethod,
        animated: bool,
    ) -> MediaFile:
        """The thumbnail to serve for a request (spec: GET .../thumbnail)."""
        info = await self.probe(source)
        if width >= info.width and height >= info.height:
            # Smaller than asked for: the spec says serve the original.
            return source.file
        animated = animated and info.animated
        if not self._config.dynamic_thumbnails:
            preset = select_thumbnail(
                self._config.thumbnail_sizes,
                width,
                height,
                method,
                lambda size: (size.width, size.height, size.method),
            )
            if preset is not None and self._covers(info, preset, width, height, method):
                width, height, method = preset.width, preset.height, preset.method
            elif method == "scale":
                # No preset is as large as asked for (and the image is larger): the
                # spec forbids answering smaller, so the request's size is made,
                # rounded up so that clients asking for many sizes share a few.  (A
                # crop is made exactly: its aspect ratio is the request's.)
                width, height = _round_up(width), _round_up(height)
        record = await self._get_or_make(source, info, width, height, method, animated)
        path = await self._intact_file(source, record)
        if path is None:
            # Recorded but lost (a cache or bucket emptied by hand, or a crash before
            # the unsynced file reached the disk): make it again.
            await self._store_forget(source, record)
            record = await self._get_or_make(source, info, width, height, method, animated)
            path = await self._intact_file(source, record)
            if path is None:
                raise errors.not_found("Thumbnail could not be stored")
        return MediaFile(
            path=path,
            content_type=record.content_type,
            upload_name=None,
            size=record.size,
            sha256=None,
        )

    async def _intact_file(self, source: ThumbnailSource, record: ThumbnailRecord) -> Path | None:
        """The thumbnail's file if it is there whole (thumbnails are stored without
        fsync, so a crash can leave one empty)."""
        path = await self._backend.local_file(
            self._thumbnail_key(source.origin, source.media_id, record)
        )
        if path is None or await self._threads.run(_size_of, path) != record.size:
            return None
        return path

    @staticmethod
    def _covers(
        info: ImageInfo, preset: ThumbnailSize, width: int, height: int, method: ThumbnailMethod
    ) -> bool:
        """Whether ``preset`` gives this image at least the size the request would."""
        have = thumbnail_dimensions(
            info.width, info.height, preset.width, preset.height, preset.method
        )
        want = thumbnail_dimensions(info.width, info.height, width, height, method)
        return have[0] >= want[0] and have[1] >= want[1]

    async def _store_forget(self, source: ThumbnailSource, record: ThumbnailRecord) -> None:
        logger.warning(
            "thumbnail %dx%d of %s/%s is missing from storage; making it again",
            record.width,
            record.height,
            source.origin,
            source.media_id,
        )
        await self._store.delete_thumbnail(source.origin, source.media_id, record)

    async def _get_or_make(
        self,
        source: ThumbnailSource,
        info: ImageInfo,
        width: int,
        height: int,
        method: ThumbnailMethod,
        animated: bool,
    ) -> ThumbnailRecord:
        out_width, out_height = thumbnail_dimensions(info.width, info.height, width, height, method)
        while True:
            for record in await self._store.get_thumbnails(source.origin, source.media_id):
                if (
                    record.width == out_width
                    and record.height == out_height
                    and record.method == method
                    and record.animated == animated
                ):
                    return record
            # A preset batch may be about to store this size: wait for it rather
            # than decode the image a second time.
            if animated or not await self._batch_step(source.origin, source.media_id):
                break
        flight_key = (source.origin, source.media_id, out_width, out_height, method, animated)
        return await self._making.run(
            flight_key, lambda: self._make(source, width, height, method, animated)
        )

    async def _make(
        self,
        source: ThumbnailSource,
        width: int,
        height: int,
        method: ThumbnailMethod,
        animated: bool,
    ) -> ThumbnailRecord:
        temp_dir = self._backend.temp_dir()
        destination = await self._threads.run(_temp_file, temp_dir)
        try:
            made = await self._threads.run(
                make_thumbnail,
                source.file.path,
                destination,
                width=width,
                height=height,
                method=method,
                animated=animated,
                max_pixels=self._config.max_image_pixels,
            )
        except ImageTooLarge:
            await self._threads.run(destination.unlink, missing_ok=True)
            raise MatrixError(
                413, errors.Codes.TOO_LARGE, "The image is too large to make a thumbnail of"
            ) from None
        except NotAnImage:
            await self._threads.run(destination.unlink, missing_ok=True)
            raise cannot_thumbnail("the file is not an image this server can read") from None
        return await self._keep(source, made, destination, method, animated=animated)

    async def _keep(
        self,
        source: ThumbnailSource,
        made: Thumbnail,
        destination: Path,
        method: ThumbnailMethod,
        *,
        animated: bool,
    ) -> ThumbnailRecord:
        """Store a thumbnail just made (its file, then its record)."""
        record = ThumbnailRecord(
            width=made.width,
            height=made.height,
            method=method,
            content_type=made.mimetype,
            size=made.size,
            animated=animated,
        )
        # Thumbnails can be made again: no fsync (a lost one is remade).
        await self._backend.store(
            self._thumbnail_key(source.origin, source.media_id, record),
            destination,
            durable=False,
        )
        await self._store.store_thumbnail(source.origin, source.media_id, record)
        return record

    def thumbnail_keys(
        self, origin: str, media_id: str, records: list[ThumbnailRecord]
    ) -> list[str]:
        return [self._thumbnail_key(origin, media_id, record) for record in records]


#: Sizes beyond the presets are made in steps of this many pixels.
_SIZE_STEP = 256


def _round_up(pixels: int) -> int:
    return -(-pixels // _SIZE_STEP) * _SIZE_STEP


def _size_of(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _temp_file(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix="thumbnail-", dir=directory)
    os.close(descriptor)
    return Path(name)


__all__ = ["ThumbnailService", "ThumbnailSize", "ThumbnailSource"]
