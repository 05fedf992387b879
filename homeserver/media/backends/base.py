"""The interface every media storage backend provides.

Metadata (who uploaded what, its type and size) is in the database; a backend only
holds bytes under keys from :mod:`homeserver.media.keys`.  Serving always reads a
local file, so range requests, HEAD and sendfile-like streaming work the same for
every backend: an object store keeps a bounded local cache and ``local_file``
fills it on a miss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class MediaBackend(Protocol):
    async def store(self, key: str, source: Path, *, durable: bool = True) -> None:
        """Keep the file at ``source`` under ``key`` durably (fsynced, or
        acknowledged by the object store) before returning.  ``source`` is a
        temporary file the backend may move; the caller does not use it again.

        ``durable=False`` is for files that can be made again (thumbnails): a local
        disk may then skip the fsyncs, and a crash may lose the file (never tear it:
        the rename is still atomic)."""

    async def local_file(self, key: str) -> Path | None:
        """A local path holding the bytes stored under ``key``, or None if there are
        none.  The caller opens it at once; the backend may remove it later (an open
        file stays readable on POSIX)."""

    async def delete(self, key: str) -> None:
        """Remove ``key`` if present (and any local copy of it)."""

    def temp_dir(self) -> Path:
        """A local directory for temporary files on the same filesystem as the
        backend's files (or its cache), so that ``store`` can rename instead of copy."""
