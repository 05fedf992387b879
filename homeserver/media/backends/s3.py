"""Media bytes in an S3-compatible object store, served from a bounded local cache.

Serving always reads a local file (:mod:`homeserver.media.backends.base`), so this
backend keeps recently used objects in a cache directory: an upload is moved there
as well as uploaded (a fresh upload is usually fetched at once, by its uploader's
client and the room's other members), and a miss downloads the object.

The cache's size is counted in memory (one walk of the directory, in a thread, the
first time it changes); when it passes its bound, the least recently used files
(by mtime, which a hit refreshes) are evicted until it is under 90% of it, so
evictions, and the directory walk they need, come in batches rather than one per
download.

Object keys are the backend keys under ``S3StorageConfig.prefix``, the layout of a
media store copied into a bucket as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import boto3.s3.transfer
import botocore.config
from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from homeserver.config.media import S3StorageConfig
from homeserver.media.backends.errors import MediaBackendError
from homeserver.media.backends.filesystem import (
    TEMP_DIR_NAME,
    fsync_file,
    key_path,
    move_into_place,
    remove_empty_parents,
)
from homeserver.media.threads import MediaThreads
from homeserver.util.single_flight import SingleFlight

logger = logging.getLogger(__name__)

#: Evict down to this fraction of ``cache_max_size``.
_LOW_WATER = 0.9
#: The error codes S3 (and its imitators) answer an absent object with: GetObject
#: says NoSuchKey, HEAD (which has no body) only its status.  Not NoSuchBucket: a
#: missing bucket is a misconfiguration, not missing media.
_ABSENT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DOWNLOAD_CHUNK = 1024 * 1024

_FAILURES = (BotoCoreError, ClientError, Boto3Error, OSError)


@contextlib.contextmanager
def _failures(action: str, key: str) -> Iterator[None]:
    """Unexpected failures of the object store or the local disk as MediaBackendError."""
    try:
        yield
    except _FAILURES as error:
        raise MediaBackendError(f"S3: could not {action} media {key!r}: {error}") from error


def _is_absent(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _ABSENT_CODES


def _cached_size(path: Path) -> int:
    """The size of the regular file at ``path``, 0 if there is none."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def _touch(path: Path) -> bool:
    """Mark the cached file at ``path`` as just used; False if it is not cached."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        os.utime(path)
    except (FileNotFoundError, NotADirectoryError):  # absent, or evicted just now
        return False
    except OSError as error:
        raise MediaBackendError(f"could not read the cached copy {path}: {error}") from error
    return True


class S3Backend:
    def __init__(
        self,
        config: S3StorageConfig,
        cache_dir: Path,
        cache_max_size: int,
        threads: MediaThreads,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        self._config = config
        self._cache_dir = Path(os.path.abspath(cache_dir))
        self._temp = self._cache_dir / TEMP_DIR_NAME
        self._max_size = cache_max_size
        self._threads = threads
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        # Modest: the media pool's threads each run a transfer of their own.
        self._transfer = boto3.s3.transfer.TransferConfig(max_concurrency=4)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._misses: SingleFlight[str, Path | None] = SingleFlight()
        # The cache's size as of the last walk plus changes since; None until the
        # first walk.  Touched on the reactor thread only.
        self._size: int | None = None
        self._walking = False
        self._changed_while_walking = 0
        # Files added while a walk runs: the next walk must not evict them, as their
        # callers are about to open them.
        self._fresh: set[Path] = set()
        # temp_dir() is synchronous and must name a directory that exists, so it is
        # made here, once, while the server starts (before the reactor serves).
        self._temp.mkdir(parents=True, exist_ok=True)

    def temp_dir(self) -> Path:
        return self._temp

    # The object store ------------------------------------------------------------

    def _s3(self) -> Any:
        """The client, made on first use (in a media thread: it reads config files
        and the credential chain).  One for all threads: boto3 clients are safe to
        share, sessions are not, so each client gets a session of its own."""
        with self._client_lock:
            if self._client is None:
                config = self._config
                options: dict[str, Any] = {
                    "retries": {"max_attempts": 3, "mode": "standard"},
                    "signature_version": "s3v4",
                    "connect_timeout": self._connect_timeout,
                    "read_timeout": self._read_timeout,
                }
                if config.endpoint_url is not None:
                    # Self-hosted stores (MinIO, Ceph, moto) rarely have the
                    # wildcard DNS that bucket-in-hostname addressing needs.
                    options["s3"] = {"addressing_style": "path"}
                session = boto3.session.Session(
                    aws_access_key_id=config.access_key_id,
                    aws_secret_access_key=config.secret_access_key,
                    region_name=config.region_name or "us-east-1",
                )
                self._client = session.client(
                    "s3",
                    endpoint_url=config.endpoint_url,
                    config=botocore.config.Config(**options),
                )
            return self._client

    def _object_key(self, key: str) -> str:
        return self._config.prefix + key

    # The backend -----------------------------------------------------------------

    async def store(self, key: str, source: Path, *, durable: bool = True) -> None:
        """Returns once the object store has the object (whatever ``durable``
        says: the bucket is the only copy that outlives the cache).  On failure
        ``source`` is left where it was, for the caller to remove."""
        path = key_path(self._cache_dir, key)
        added = await self._threads.run(self._store, key, source, path)
        await self._cache_changed(added, path)

    def _store(self, key: str, source: Path, path: Path) -> int:
        with _failures("store", key):
            self._s3().upload_file(
                str(source), self._config.bucket, self._object_key(key), Config=self._transfer
            )
        # Stored: the cached copy is only a convenience from here on.
        try:
            # A cached file outlives crashes: fsynced, so a crash cannot leave a
            # torn copy to be served until it is evicted.
            fsync_file(source)
            replaced = _cached_size(path)
            size = source.stat().st_size
            move_into_place(source, path)
            os.utime(path)  # as recently used as a hit
        except (OSError, MediaBackendError) as error:
            logger.warning("Could not keep media %r in the local cache: %s", key, error)
            with contextlib.suppress(OSError):
                source.unlink(missing_ok=True)
            return 0
        return size - replaced

    async def local_file(self, key: str) -> Path | None:
        path = key_path(self._cache_dir, key)
        if await self._threads.run(_touch, path):
            return path
        # Concurrent misses for one key share one download.  (Another process on the
        # same cache may download it too: each writes its own temporary file.)
        return await self._misses.run(key, lambda: self._fetch(key, path))

    async def _fetch(self, key: str, path: Path) -> Path | None:
        added = await self._threads.run(self._download, key, path)
        if added is None:
            return None
        await self._cache_changed(added, path)
        return path

    def _download(self, key: str, path: Path) -> int | None:
        """Fetch ``key`` into the cache at ``path``: the bytes added to the cache, or
        None if the store has no such object."""
        with _failures("fetch", key):
            try:
                response = self._s3().get_object(
                    Bucket=self._config.bucket, Key=self._object_key(key)
                )
            except ClientError as error:
                if _is_absent(error):
                    return None
                raise
            fd, name = tempfile.mkstemp(dir=self._temp, prefix="download-")
            temp = Path(name)
            try:
                with os.fdopen(fd, "wb") as file, contextlib.closing(response["Body"]) as body:
                    # botocore checks the length it read against Content-Length.
                    shutil.copyfileobj(body, file, _DOWNLOAD_CHUNK)
                    file.flush()
                    # As for uploads: no torn copy after a crash.
                    os.fsync(file.fileno())
                size = temp.stat().st_size
                replaced = _cached_size(path)
                move_into_place(temp, path)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            return size - replaced

    async def delete(self, key: str) -> None:
        path = key_path(self._cache_dir, key)
        removed = await self._threads.run(self._delete, key, path)
        if removed:
            await self._cache_changed(-removed, None)

    def _delete(self, key: str, path: Path) -> int:
        with _failures("delete", key):
            # The object first: a miss between the two then finds nothing to fetch.
            # (S3 answers deleting an absent object with success.)
            self._s3().delete_object(Bucket=self._config.bucket, Key=self._object_key(key))
            size = _cached_size(path)
            try:
                path.unlink()
            except FileNotFoundError:
                return 0
            remove_empty_parents(path, self._cache_dir)
            return size

    # The cache's bound -----------------------------------------------------------

    async def _cache_changed(self, added: int, path: Path | None) -> None:
        """Count ``added`` bytes (negative: removed) and evict if the cache is over
        its bound.  ``path``: a file just added, which must stay (its caller is about
        to open it).  Never fails: a cache that cannot shrink still serves."""
        if self._size is not None:
            self._size += added
        if self._walking:
            self._changed_while_walking += added
            if path is not None:
                self._fresh.add(path)
            return
        if self._size is not None and self._size <= self._max_size:
            return
        if path is not None:
            self._fresh.add(path)
        self._walking = True
        try:
            while True:
                keep = frozenset(self._fresh)
                self._changed_while_walking = 0
                try:
                    remaining = await self._threads.run(self._walk_and_evict, keep)
                except Exception:
                    logger.exception("Could not shrink the media cache in %s", self._cache_dir)
                    return
                self._fresh -= keep
                # Files added during the walk may have been counted by it as well:
                # an overestimate, which the next walk corrects.
                changed = self._changed_while_walking
                self._size = remaining + changed
                if changed == 0 or self._size <= self._max_size:
                    return
        finally:
            self._walking = False
            self._fresh.clear()

    def _walk_and_evict(self, keep: frozenset[Path]) -> int:
        """Total the cache; if it is over its bound, remove least recently used
        files (but none in ``keep``) until it is under the low-water mark.  The size
        left."""
        files = list(self._cached_files())
        total = sum(size for _, size, _ in files)
        if total <= self._max_size:
            return total
        target = int(self._max_size * _LOW_WATER)
        files.sort()
        for _, size, path in files:
            if total <= target:
                break
            if path in keep:
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                pass  # deleted meanwhile: gone all the same
            except OSError as error:
                logger.warning("Could not evict %s from the media cache: %s", path, error)
                continue
            total -= size
            remove_empty_parents(path, self._cache_dir)
        return total

    def _cached_files(self) -> Iterator[tuple[int, int, Path]]:
        """(mtime in ns, size, path) of each cached file; not the temporary files."""
        pending = [self._cache_dir]
        while pending:
            directory = pending.pop()
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:
                continue  # pruned by a delete meanwhile
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if not (directory == self._cache_dir and entry.name == TEMP_DIR_NAME):
                        pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    yield info.st_mtime_ns, info.st_size, Path(entry.path)
