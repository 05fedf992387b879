"""The media backend the config asks for: an S3-compatible bucket when
``media_storage`` names one, else files under ``media_store_path``."""

from __future__ import annotations

from pathlib import Path

from homeserver.config.media import MediaConfig
from homeserver.media.backends.base import MediaBackend
from homeserver.media.backends.filesystem import FilesystemBackend
from homeserver.media.backends.s3 import S3Backend
from homeserver.media.threads import MediaThreads

#: Under ``media_store_path``: the S3 backend's cache of recently served files.
S3_CACHE_DIR_NAME = "s3_cache"


def build_backend(
    media_store_path: Path, media: MediaConfig, threads: MediaThreads
) -> MediaBackend:
    if media.s3 is not None:
        return S3Backend(
            media.s3, media_store_path / S3_CACHE_DIR_NAME, media.cache_max_size, threads
        )
    return FilesystemBackend(media_store_path, threads)
