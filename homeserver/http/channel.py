"""An HTTP/1.1 connection with absolute deadlines for receiving each request.

Twisted's own timeout (``HTTPChannel.timeOut``, ``Site(timeout=...)``) restarts on
every byte received, so a client trickling one byte every few seconds keeps a
connection — a file descriptor and its buffers — for ever ("slowloris").  Here each
phase of a connection's life has its own deadline, fixed when the phase starts:

========== ================================================ =========================
phase      starts                                           ends the connection after
========== ================================================ =========================
headers    at connection start, or at the first byte of a   ``header_timeout``
           later request on a kept-alive connection
body       when the headers are complete                    ``body_timeout`` + one
                                                            second per
                                                            ``body_min_rate`` bytes
responding when the request is complete                     never: a long-polling
                                                            /sync may take minutes
idle       when the response is done                        ``idle_timeout``
========== ================================================ =========================

A client that has sent part of a request when its deadline passes is answered
``408 Request Timeout`` (RFC 9110 §15.5.9) before the connection is closed; one that
has sent nothing (an idle or unused connection) is closed silently, as RFC 9112
§9.5 allows a server to close an idle connection at any time.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http

from homeserver.http.limits import ConnectionLimits

_TIMEOUT_RESPONSE_BODY = b'{"errcode":"M_UNKNOWN","error":"Request not received in time"}'
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(_TIMEOUT_RESPONSE_BODY)).encode("ascii") + b"\r\n"
    b"Connection: close\r\n"
    b"\r\n" + _TIMEOUT_RESPONSE_BODY
)


#: After answering a request before its body has arrived (a 413), how much more of
#: the body is read and discarded, and for how long, before the connection closes.
LINGER_BYTES = 8 * 1024 * 1024
LINGER_SECONDS = 10.0


class Phase(enum.Enum):
    HEADERS = "headers"
    BODY = "body"
    RESPONDING = "responding"
    IDLE = "idle"
    CLOSING = "closing"


class MatrixChannel(http.HTTPChannel):
    """``HTTPChannel`` whose receive phases each have an absolute deadline."""

    #: Set by the site that builds the channel (twisted.web reads it from requests).
    site: Any

    def __init__(
        self,
        limits: ConnectionLimits,
        clock: IReactorTime,
        on_connection_lost: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self._limits = limits
        self._clock = clock
        self._on_connection_lost = on_connection_lost
        # Twisted's idle timer restarts on every byte; the deadlines replace it.
        self.timeOut = None
        self.phase = Phase.HEADERS
        self._received_anything = False
        self._deadline: IDelayedCall | None = None
        self._lingered = 0

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        """TimeoutMixin's timers, the abort-after-close one (forceAbortClient) among
        them, on our clock rather than the global reactor."""
        return self._clock.callLater(period, func)

    # -- connection events -------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()
        self._enter(Phase.HEADERS, self._limits.header_timeout)

    def refuse_body(self, response: bytes) -> None:
        """Answer the request being received with ``response`` (a complete HTTP
        response: a 413) now, and read no more of it.

        What else the client sends is read and thrown away, up to
        :data:`LINGER_BYTES` or for :data:`LINGER_SECONDS`, so that the answer is not
        lost to a connection reset while the client is still sending (RFC 9112 §9.6:
        close "in stages"); then the connection closes.
        """
        transport: Any = self.transport
        if transport is None or self.phase is Phase.CLOSING:
            return
        transport.write(response)
        self._enter(Phase.CLOSING, None)
        self._lingered = 0
        self._deadline = self._clock.callLater(LINGER_SECONDS, self.timeoutConnection)

    def dataReceived(self, data: bytes) -> None:
        if self.phase is Phase.CLOSING:
            self._lingered += len(data)
            transport: Any = self.transport
            if self._lingered > LINGER_BYTES and transport is not None:
                transport.abortConnection()
            return
        if self.phase is Phase.IDLE:
            self._enter(Phase.HEADERS, self._limits.header_timeout)
        elif self.phase is Phase.BODY and self._deadline is not None:
            # Sending at the minimum rate keeps pushing the deadline back.
            self._deadline.delay(len(data) / self._limits.body_min_rate)
        if data:
            self._received_anything = True
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        super().allHeadersReceived()
        if self.phase is Phase.HEADERS:
            # A request without a body goes straight on to allContentReceived.
            self._enter(Phase.BODY, self._limits.body_timeout)

    def allContentReceived(self) -> None:
        # Before super(): a request answered synchronously calls requestDone inside it.
        self._enter(Phase.RESPONDING, None)
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        # Before super(): it replays pipelined bytes, which start the next request.
        # A connection about to close also gets the idle deadline, so a client that
        # never reads our response cannot keep it open.
        self._received_anything = False
        self._enter(Phase.IDLE, self._limits.idle_timeout)
        super().requestDone(request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_deadline()
        self.phase = Phase.CLOSING
        super().connectionLost(reason)
        self._on_connection_lost()

    # -- deadlines ---------------------------------------------------------

    def _enter(self, phase: Phase, timeout: float | None) -> None:
        self._cancel_deadline()
        self.phase = phase
        if timeout is not None:
            self._deadline = self._clock.callLater(timeout, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        expired = self.phase
        self.phase = Phase.CLOSING
        transport: Any = self.transport
        if transport is None:
            return
        if transport.disconnecting:
            # Already closing (say, after a 400) but the client is not reading.
            transport.abortConnection()
            return
        if expired in (Phase.HEADERS, Phase.BODY) and self._received_anything:
            transport.write(_TIMEOUT_RESPONSE)
        # loseConnection, then abort after abortTimeout if the client does not read.
        self.timeoutConnection()
