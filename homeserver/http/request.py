"""The HTTP request and site: body size limit, timing and the access log.

The body limit is enforced while the body arrives, before anything parses it: a
request over the limit is answered ``413 M_TOO_LARGE`` without buffering it, and a
client that keeps sending far past the limit is disconnected.
"""

from __future__ import annotations

import io
import logging
import re
import time
from typing import Any

from twisted.web import http, server

access_logger = logging.getLogger("homeserver.access")

#: Bytes past the limit we read and throw away so the client can read our 413
#: (closing with unread data makes the kernel reset the connection instead).
_DISCARD_ALLOWANCE = 8 * 1024 * 1024

_ACCESS_TOKEN_IN_QUERY = re.compile(rb"(access_token=)[^&]*")


class _DiscardingBuffer(io.BytesIO):
    def write(self, data: Any) -> int:
        return len(data)


class MatrixRequest(server.Request):
    """A twisted.web request that knows its size limit and measures itself."""

    #: Set by :class:`MatrixSite` for each request.
    max_body_size: int = 0

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(channel, *args, **kwargs)
        self.started = time.perf_counter()
        self.body_too_large = False
        self._body_received = 0
        #: Filled in by authentication, for the access log.
        self.authenticated_user: str | None = None

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_body_size:
            self.body_too_large = True
            self.content = _DiscardingBuffer()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self._body_received += len(data)
        if self._body_received > self.max_body_size and not self.body_too_large:
            # No (or a lying) Content-Length: we only learn the size as chunks arrive.
            self.body_too_large = True
            self.content = _DiscardingBuffer()
        if self.body_too_large:
            if self._body_received > self.max_body_size + _DISCARD_ALLOWANCE:
                assert self.transport is not None
                self.transport.abortConnection()
            return
        super().handleContentChunk(data)

    def loggable_uri(self) -> str:
        return _ACCESS_TOKEN_IN_QUERY.sub(rb"\1<redacted>", self.uri).decode("ascii", "replace")

    def client_ip(self) -> str:
        address = self.getClientAddress()
        return getattr(address, "host", "-")


class MatrixSite(server.Site):
    """A site whose requests carry the body limit and are logged with their timing."""

    def __init__(self, resource: Any, *, max_body_size: int, reactor: Any) -> None:
        super().__init__(resource, reactor=reactor)
        self._max_body_size = max_body_size
        site = self

        class _Request(MatrixRequest):
            max_body_size = site._max_body_size

        self.requestFactory = _Request
        self.noisy = False

    def log(self, request: http.Request) -> None:
        assert isinstance(request, MatrixRequest)
        elapsed_ms = (time.perf_counter() - request.started) * 1000
        access_logger.info(
            "%s %s %s %s %d %dB %.1fms %s",
            request.client_ip(),
            request.authenticated_user or "-",
            request.method.decode("ascii", "replace"),
            request.loggable_uri(),
            request.code,
            request.sentLength,
            elapsed_ms,
            (request.getHeader("user-agent") or "-")[:100],
        )
