"""An upload's body, written to a temporary file as it arrives.

Uploads are never held whole in memory: chunks are gathered into blocks of
``_BLOCK`` bytes and written, in order, by one job at a time on the media thread
pool (which also hashes them), so neither the disk nor SHA-256 runs on the reactor
thread.  If the disk falls behind the network by more than ``_MAX_BACKLOG`` bytes,
the connection stops being read (TCP flow control then slows the client) until it
catches up.  Memory per upload is thus bounded by the backlog, whatever its size.

The file lands in the storage backend's temporary directory, on the same
filesystem as the media store, so storing it is a rename.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import attrs
from twisted.internet import defer

from homeserver.media.threads import MediaThreads

logger = logging.getLogger(__name__)

_BLOCK = 1024 * 1024
_MAX_BACKLOG = 4 * 1024 * 1024
#: Written bytes flushed to the disk as an upload goes, rather than all at its end.
_SYNC_EVERY = 8 * 1024 * 1024
#: Bytes kept from the start of the file, for recognising its type.
HEAD_SIZE = 8192


@attrs.frozen
class SpooledFile:
    """A complete upload on local disk; whoever holds it owns the file."""

    path: Path
    size: int
    sha256: str
    #: The first :data:`HEAD_SIZE` bytes.
    head: bytes


class UploadSpool:
    """A :class:`~homeserver.http.request.StreamedBody` writing to a temp file."""

    def __init__(self, threads: MediaThreads, temp_dir: Path, transport: Any) -> None:
        self._threads = threads
        self._temp_dir = temp_dir
        self._transport = transport
        self._pending: list[bytes] = []
        self._pending_size = 0
        #: Bytes handed to write jobs and not yet written.
        self._backlog = 0
        self._paused = False
        self._size = 0
        self._head = bytearray()
        self._hash = hashlib.sha256()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        #: The last write job; each new one runs after it.
        self._tail: defer.Deferred[None] = defer.succeed(None)
        self._error: BaseException | None = None
        self._discarded = False
        self._taken = False
        #: Fires once a discarded upload's file is removed (for discard_and_wait).
        self._removed: defer.Deferred[None] | None = None
        self._unsynced = 0

    # -- StreamedBody ----------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._discarded:
            return
        self._size += len(data)
        if len(self._head) < HEAD_SIZE:
            self._head += data[: HEAD_SIZE - len(self._head)]
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= _BLOCK:
            self._submit()

    def discard(self) -> None:
        """Drop the upload (and its file, once the writes in flight are done)."""
        if self._discarded or self._taken:
            return
        self._discarded = True
        self._pending.clear()
        self._resume()
        removed: defer.Deferred[None] = defer.Deferred()
        self._removed = removed

        async def remove() -> None:
            try:
                await self._threads.run(self._remove_file)
            finally:
                removed.callback(None)

        self._tail.addBoth(lambda _: defer.ensureDeferred(remove()))

    async def discard_and_wait(self) -> None:
        """:meth:`discard`, returning once the file is gone (a remote download that
        fails waits for it, so that no partial file outlives the error answered)."""
        self.discard()
        removed, self._removed = self._removed, None
        if removed is not None:
            await removed

    # -- completion ------------------------------------------------------------

    async def finish(self) -> SpooledFile:
        """Wait for every byte to be on disk and take ownership of the file."""
        if self._discarded:
            raise RuntimeError("upload already discarded")
        self._submit()
        self._tail.addCallback(lambda _: defer.ensureDeferred(self._threads.run(self._close)))
        await self._tail
        if self._error is not None:
            self.discard()
            raise self._error
        assert self._path is not None
        self._taken = True
        return SpooledFile(self._path, self._size, self._hash.hexdigest(), bytes(self._head))

    @property
    def size(self) -> int:
        return self._size

    # -- writing (jobs run one at a time, in order, on the media pool) ------------

    def _submit(self) -> None:
        block = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        self._backlog += len(block)
        if self._backlog > _MAX_BACKLOG and not self._paused:
            self._paused = True
            self._transport.pauseProducing()
        self._tail.addCallback(lambda _: defer.ensureDeferred(self._write_job(block)))

    async def _write_job(self, block: bytes) -> None:
        try:
            if self._error is None and not self._discarded:
                await self._threads.run(self._write_blocking, block)
        except Exception as error:  # disk full, I/O error: answered at finish()
            logger.warning("writing an upload to %s failed: %s", self._temp_dir, error)
            self._error = error
        finally:
            self._backlog -= len(block)
            if self._backlog <= _MAX_BACKLOG // 2:
                self._resume()

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self._transport.resumeProducing()

    def _write_blocking(self, block: bytes) -> None:
        if self._file is None:
            self._temp_dir.mkdir(parents=True, exist_ok=True)
            descriptor, name = tempfile.mkstemp(prefix="upload-", dir=self._temp_dir)
            self._file = os.fdopen(descriptor, "wb")
            self._path = Path(name)
        if block:
            self._file.write(block)
            self._hash.update(block)
            self._unsynced += len(block)
            if self._unsynced >= _SYNC_EVERY:
                # Flushed while the rest is still arriving, so the fsync that makes
                # the upload durable (backends/base.py) has little left to wait for.
                self._file.flush()
                os.fdatasync(self._file.fileno())
                self._unsynced = 0

    def _close(self) -> None:
        if self._file is None:
            self._write_blocking(b"")  # an empty upload is still a file
        assert self._file is not None
        self._file.close()

    def _remove_file(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)
