"""Sending a file as a response: ranges, conditional requests, and streaming from
disk without blocking the reactor.

A handler returns a :class:`FileResponse`; the JSON resource hands it the request.
The file is read in 1 MiB blocks on a thread pool and written as the client takes
them (a push producer that the connection pauses when its buffer is full), so a slow
client never makes the server hold a whole file in memory.

Ranges (RFC 9110 §14): one ``bytes=`` range is served as 206; an unsatisfiable one
is 416 with ``Content-Range: bytes */size``; several ranges, or a malformed header,
get the whole file (which the RFC allows).  ``If-Range`` and ``If-None-Match``
compare against the file's strong ETag.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import IO, Any

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.web import server
from zope.interface import implementer

logger = logging.getLogger(__name__)

#: Runs a blocking function on a thread pool (the media pool), returning its result.
BlockingRunner = Callable[..., Coroutine[Any, Any, Any]]

#: Big enough that a typical photo or voice message is one read on the thread pool.
_BLOCK = 1024 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@attrs.frozen
class FileResponse:
    """A file to send, with the headers that describe it."""

    path: Path
    size: int
    content_type: str
    headers: dict[str, str] = attrs.field(factory=dict)
    #: A strong validator (quoted), e.g. from the file's hash; None: no ETag.
    etag: str | None = None
    run_blocking: BlockingRunner | None = None

    def send(self, request: server.Request) -> None:
        for name, value in self.headers.items():
            request.setHeader(name, value)
        request.setHeader("Content-Type", self.content_type)
        request.setHeader("Accept-Ranges", "bytes")
        if self.etag is not None:
            request.setHeader("ETag", self.etag)
            if _matches(request.getHeader("if-none-match"), self.etag):
                request.setResponseCode(304)
                request.finish()
                return
        start, length = 0, self.size
        wanted = _requested_range(request, self.size, self.etag)
        if wanted == "unsatisfiable":
            request.setResponseCode(416)
            request.setHeader("Content-Range", f"bytes */{self.size}")
            request.setHeader("Content-Length", "0")
            request.finish()
            return
        if isinstance(wanted, tuple):
            start, end = wanted
            length = end - start + 1
            request.setResponseCode(206)
            request.setHeader("Content-Range", f"bytes {start}-{end}/{self.size}")
        else:
            request.setResponseCode(200)
        request.setHeader("Content-Length", str(length))
        if request.method == b"HEAD" or length == 0:
            request.finish()
            return
        assert self.run_blocking is not None
        FileProducer(request, self.path, start, length, self.run_blocking).start()


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    return header.strip() == "*" or etag in (tag.strip() for tag in header.split(","))


def _requested_range(
    request: server.Request, size: int, etag: str | None
) -> tuple[int, int] | str | None:
    """(first, last) byte of the one range asked for; "unsatisfiable"; or None for
    the whole file."""
    header = request.getHeader("range")
    if header is None:
        return None
    if_range = request.getHeader("if-range")
    if if_range is not None and (etag is None or if_range.strip() != etag):
        return None  # the client's copy is stale: it gets the whole new file
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        # A suffix: the last N bytes.
        suffix = int(last)
        if suffix == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if start >= size:
        return "unsatisfiable"
    if end < start:
        return None
    return start, end


@implementer(IPushProducer)
class FileProducer:
    """Reads ``length`` bytes from ``start`` off the thread pool, writing each block
    when it arrives; paused and resumed by the connection."""

    def __init__(
        self,
        request: server.Request,
        path: Path,
        start: int,
        length: int,
        run_blocking: BlockingRunner,
    ) -> None:
        self._request = request
        self._path = path
        self._offset = start
        self._remaining = length
        self._run = run_blocking
        self._file: IO[bytes] | None = None
        self._paused = False
        self._reading = False
        self._stopped = False

    def start(self) -> None:
        self._request.registerProducer(self, True)
        self._read_next()

    def _read_next(self) -> None:
        if self._paused or self._reading or self._stopped:
            return
        self._reading = True
        defer.ensureDeferred(self._read_block()).addErrback(self._failed)

    async def _read_block(self) -> None:
        wanted = min(_BLOCK, self._remaining)
        if self._file is None:
            # Opening and the first read are one trip to the thread pool.
            self._file, block = await self._run(_open_and_read, self._path, self._offset, wanted)
        else:
            block = await self._run(self._file.read, wanted)
        self._reading = False
        if self._stopped:
            self._close()
            return
        if not block:
            # The file is shorter than recorded: end the response rather than hang.
            raise OSError(f"{self._path} ended {self._remaining} bytes early")
        self._remaining -= len(block)
        self._request.write(block)
        if self._remaining <= 0:
            self._done()
        else:
            self._read_next()

    def _done(self) -> None:
        self._close()
        self._request.unregisterProducer()
        self._request.finish()

    def _failed(self, failure: Any) -> None:
        logger.error("sending %s failed: %s", self._path, failure.getErrorMessage())
        self._reading = False
        self._stopped = True
        self._close()
        transport: Any = self._request.transport
        if transport is not None:
            # Headers (and maybe part of the body) are out: all we can do is stop.
            transport.abortConnection()

    def _close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            defer.ensureDeferred(self._run(file.close))

    # -- IPushProducer --------------------------------------------------------

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._read_next()

    def stopProducing(self) -> None:
        self._stopped = True
        if not self._reading:
            self._close()


def _open_and_read(path: Path, offset: int, size: int) -> tuple[IO[bytes], bytes]:
    file = path.open("rb")
    try:
        if offset:
            file.seek(offset)
        return file, file.read(size)
    except BaseException:
        file.close()
        raise
