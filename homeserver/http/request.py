"""The HTTP request and site: body size limit, client address, timing and the access log.

The body limit is enforced while the body arrives, before anything parses it: a
request over the limit is answered ``413 M_TOO_LARGE`` without buffering it, and a
client that keeps sending far past the limit is disconnected.

On ``x_forwarded`` listeners the request's client address and scheme are the ones
the reverse proxy reports (:mod:`homeserver.http.proxy`); everything that asks
``getClientAddress()`` — rate limits, last-seen IPs, the access log — agrees.  The
site caps its open connections and gives each connection receive deadlines
(:mod:`homeserver.http.channel`).
"""

from __future__ import annotations

import io
import logging
import re
import time
from typing import Any, Protocol, cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IReactorTime, ITCPTransport
from twisted.web import http, server

from homeserver.http.channel import MatrixChannel
from homeserver.http.limits import ConnectionLimits
from homeserver.http.proxy import forwarded_client_address, forwarded_is_secure

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("homeserver.access")

#: At most one "connection cap reached" warning per listener in this many seconds.
_CAP_WARNING_INTERVAL = 60.0

#: Bytes past the limit we read and throw away so the client can read our 413
#: (closing with unread data makes the kernel reset the connection instead).
_DISCARD_ALLOWANCE = 8 * 1024 * 1024

_ACCESS_TOKEN_IN_QUERY = re.compile(rb"(access_token=)[^&]*")


class _DiscardingBuffer(io.BytesIO):
    def write(self, data: Any) -> int:
        return len(data)


class StreamedBody(Protocol):
    """Where the body of a request that is not buffered in memory goes (a media
    upload): it gets each chunk as it arrives, and is told when the request ends
    without anybody claiming it, so it can clean up."""

    def write(self, data: bytes) -> None: ...

    def discard(self) -> None:
        """The body will not be used (too large, connection lost, request done)."""


class StreamedBodyFactory(Protocol):
    def streamed_body(
        self, method: bytes, path: bytes, request: MatrixRequest
    ) -> tuple[StreamedBody, int] | None:
        """Decides, from the request line and headers, whether a request's body is
        streamed rather than buffered: None, or the body's sink and the size limit
        that replaces ``max_body_size`` for it."""


class MatrixRequest(server.Request):
    """A twisted.web request that knows its size limit and measures itself."""

    #: Set by :class:`MatrixSite` for each request.
    max_body_size: int = 0
    #: Whether X-Forwarded-For/-Proto come from our reverse proxy (``x_forwarded``).
    trust_forwarded_headers: bool = False
    #: Set by :class:`MatrixSite`: which requests stream their bodies.
    streamed_body_factory: StreamedBodyFactory | None = None

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(channel, *args, **kwargs)
        self.started = time.perf_counter()
        self.body_too_large = False
        self._body_received = 0
        self._forwarded_address: IPv4Address | IPv6Address | None = None
        self._forwarded_secure: bool | None = None
        #: Filled in by authentication, for the access log.
        self.authenticated_user: str | None = None
        #: Set by routing for handlers that stop when the client disconnects.
        self.cancel_on_disconnect = False
        #: The sink of a streamed body (an upload), if this request has one.
        self.streamed_body: StreamedBody | None = None

    def gotLength(self, length: int | None) -> None:
        if self.streamed_body_factory is not None:
            # The request line is parsed but not yet given to the request.
            channel: Any = self.channel
            streamed = self.streamed_body_factory.streamed_body(
                getattr(channel, "_command", b""), getattr(channel, "_path", b""), self
            )
            if streamed is not None:
                self.streamed_body, self.max_body_size = streamed
        if length is not None and length > self.max_body_size:
            self._refuse_body()
            return
        # Always memory: the limit bounds it.  Twisted would spool bodies over 100 kB,
        # or of unknown length, to a temporary file: disk I/O on the reactor thread,
        # and a file that body parsing cannot read as bytes.  A streamed body leaves
        # this empty.
        self.content = io.BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        self._body_received += len(data)
        if self._body_received > self.max_body_size and not self.body_too_large:
            # No (or a lying) Content-Length: we only learn the size as chunks arrive.
            self._refuse_body()
        if self.body_too_large:
            if self._body_received > self.max_body_size + _DISCARD_ALLOWANCE:
                assert self.transport is not None
                # HTTP runs over TCP (or TLS on TCP), whose transports can abort;
                # twisted.web types a request's transport as the plain ITransport.
                cast(ITCPTransport, self.transport).abortConnection()
            return
        if self.streamed_body is not None:
            self.streamed_body.write(data)
            return
        super().handleContentChunk(data)

    def _refuse_body(self) -> None:
        """The body is over the limit: answer 413 at once, before reading it.

        A client that reads while it sends (browsers, curl) sees the answer and
        stops; the channel discards what else arrives for a while, then closes.
        """
        self.body_too_large = True
        self.content = _DiscardingBuffer()
        self._drop_streamed_body()
        refuse = getattr(self.channel, "refuse_body", None)
        if refuse is None:
            return  # answered when the body is complete (JsonResource)
        # A "100 Continue" must not follow the final answer.
        self.requestHeaders.removeHeader(b"expect")
        body = (
            b'{"errcode":"M_TOO_LARGE","error":"Request body is larger than the '
            + str(self.max_body_size).encode("ascii")
            + b'-byte limit"}'
        )
        access_logger.info(
            "%s - %s %s 413 (body over %d bytes; answered before reading it)",
            self.client_ip(),
            getattr(self.channel, "_command", b"-").decode("ascii", "replace"),
            _ACCESS_TOKEN_IN_QUERY.sub(
                rb"\1<redacted>", getattr(self.channel, "_path", b"-")
            ).decode("ascii", "replace"),
            self.max_body_size,
        )
        refuse(
            b"HTTP/1.1 413 Payload Too Large\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode("ascii") + b"\r\n"
            b"Access-Control-Allow-Origin: *\r\n"
            b"Connection: close\r\n"
            b"\r\n" + body
        )

    def _drop_streamed_body(self) -> None:
        if self.streamed_body is not None:
            self.streamed_body.discard()
            self.streamed_body = None

    def connectionLost(self, reason: Any) -> None:
        self._drop_streamed_body()
        super().connectionLost(reason)

    def finish(self) -> None:
        # Whatever the handler did not claim of a streamed body goes now.
        self._drop_streamed_body()
        super().finish()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # The headers are complete here, and nothing has asked for the address yet.
        if self.trust_forwarded_headers:
            self._forwarded_address = forwarded_client_address(self.requestHeaders)
            self._forwarded_secure = forwarded_is_secure(self.requestHeaders)
        super().requestReceived(command, path, version)

    def getClientAddress(self) -> IAddress | IPv4Address | IPv6Address:
        """The proxy's X-Forwarded-For on ``x_forwarded`` listeners, else the peer."""
        if self._forwarded_address is not None:
            return self._forwarded_address
        address: IAddress = super().getClientAddress()
        return address

    def isSecure(self) -> bool:
        """The proxy's X-Forwarded-Proto on ``x_forwarded`` listeners, else the transport's."""
        if self._forwarded_secure is not None:
            return self._forwarded_secure
        return bool(super().isSecure())

    def loggable_uri(self) -> str:
        return _ACCESS_TOKEN_IN_QUERY.sub(rb"\1<redacted>", self.uri).decode("ascii", "replace")

    def client_ip(self) -> str:
        address = self.getClientAddress()
        return getattr(address, "host", "-")


class MatrixSite(server.Site):
    """A site whose requests carry the body limit and are logged with their timing.

    At most ``limits.max_connections`` connections are open at once: past the cap a
    new connection is accepted and closed at once, without a response, while the
    open ones are served as usual; as soon as one closes (by its client or by a
    deadline) the next is accepted again.  Refusing is cheaper than serving, so a
    client holding connections cannot make the server run out of memory or file
    descriptors, only (until the deadlines close them) out of this listener's slots.
    """

    def __init__(
        self,
        resource: Any,
        *,
        max_body_size: int,
        reactor: IReactorTime,
        limits: ConnectionLimits | None = None,
        x_forwarded: bool = False,
        streamed_bodies: StreamedBodyFactory | None = None,
    ) -> None:
        super().__init__(resource, reactor=reactor)
        self._clock = reactor
        self._max_body_size = max_body_size
        self.limits = limits or ConnectionLimits()
        #: Connections built and not yet lost.
        self.open_connections = 0
        self._last_cap_warning: float | None = None
        site = self

        class _Request(MatrixRequest):
            max_body_size = site._max_body_size
            trust_forwarded_headers = x_forwarded
            streamed_body_factory = streamed_bodies

        self.requestFactory = _Request
        self.noisy = False

    def buildProtocol(self, addr: object) -> MatrixChannel | None:  # type: ignore[override]
        if self.open_connections >= self.limits.max_connections:
            self._warn_cap_reached()
            return None  # the reactor closes the accepted socket at once
        channel = MatrixChannel(self.limits, self._clock, self._connection_lost)
        channel.factory = self
        channel.site = self
        channel.requestFactory = self.requestFactory
        self.open_connections += 1
        return channel

    def _connection_lost(self) -> None:
        self.open_connections -= 1

    def _warn_cap_reached(self) -> None:
        now = self._clock.seconds()
        if self._last_cap_warning is None or now - self._last_cap_warning >= _CAP_WARNING_INTERVAL:
            self._last_cap_warning = now
            logger.warning(
                "%d connections open (max_connections); refusing new connections",
                self.open_connections,
            )

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
