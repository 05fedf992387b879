"""Images fetched for URL previews, stored as media so clients can show them.

They belong to the server, not to the user whose request fetched them
(``local_media.url_cache`` holds the page's URL), so they count against nobody's
upload limits and are not listed among anybody's uploads.

spec: client-server-api/modules/content_repo.md (``og:image`` is an ``mxc://`` URI)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from homeserver.media.content_types import recorded_content_type
from homeserver.media.ids import parse_mxc_uri
from homeserver.media.preview.previewer import PreviewImage
from homeserver.media.repository import MediaRepository
from homeserver.media.spool import HEAD_SIZE, SpooledFile
from homeserver.media.threads import MediaThreads


class MediaPreviewImages:
    """The previewer's :class:`~homeserver.media.preview.previewer.PreviewImageSink`."""

    def __init__(self, repository: MediaRepository, threads: MediaThreads) -> None:
        self._repository = repository
        self._threads = threads

    async def store_preview_image(
        self, body: bytes, content_type: str, url: str
    ) -> PreviewImage | None:
        recorded = recorded_content_type(content_type, body[:HEAD_SIZE])
        if not recorded.startswith("image/"):
            return None
        spooled = await self._threads.run(_write_temp, self._repository.temp_dir(), body)
        content_uri = await self._repository.upload(
            self._repository.server_name, spooled, recorded, None, url_cache=url
        )
        parsed = parse_mxc_uri(content_uri)
        assert parsed is not None
        media = await self._repository.get_record(parsed[1])
        assert media is not None
        return PreviewImage(
            mxc=content_uri,
            width=media.width,
            height=media.height,
            size=len(body),
            mimetype=recorded,
        )


def _write_temp(directory: Path, body: bytes) -> SpooledFile:
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix="preview-", dir=directory)
    with os.fdopen(descriptor, "wb") as file:
        file.write(body)
    return SpooledFile(Path(name), len(body), hashlib.sha256(body).hexdigest(), body[:HEAD_SIZE])
