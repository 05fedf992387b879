"""The connection pool of the federation agent, with a cap on response headers.

Twisted's HTTP client limits each header line (16 KiB) but not how many lines come:
a hostile server could send headers without end, and they would pile up in memory
until the request's timeout.  Bodies are capped by the client (``max_size``); this
caps what comes before them: once a request is sent, at most
:data:`MAX_HEADER_BYTES` may arrive before its response's headers are complete, or
the connection is dropped (the request fails as any lost connection does).

``HTTPConnectionPool._factory`` and ``_HTTP11ClientFactory`` (the protocol factory
the pool connects with) are documented in Twisted, though private by name; this
module is the one place that relies on them.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IAddress
from twisted.web._newclient import HTTP11ClientProtocol
from twisted.web.client import HTTPConnectionPool, _HTTP11ClientFactory

logger = logging.getLogger(__name__)

#: Far above any real response's headers (a few hundred bytes; a few KiB with long
#: cookies or CDN headers), far below what would hurt.
MAX_HEADER_BYTES = 256 * 1024


class _HeaderCappedProtocol(HTTP11ClientProtocol):
    _awaiting_headers = False
    _header_bytes = 0

    def request(self, request: Any) -> Any:
        self._awaiting_headers = True
        self._header_bytes = 0
        response = super().request(request)

        def headers_done(result: Any) -> Any:
            self._awaiting_headers = False
            return result

        response.addBoth(headers_done)
        return response

    def dataReceived(self, bytes: bytes) -> None:
        super().dataReceived(bytes)  # type: ignore[no-untyped-call]
        # Counted after parsing: data that completed the headers (and the start of
        # the body that came with it) does not count.
        if self._awaiting_headers:
            self._header_bytes += len(bytes)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._awaiting_headers = False
                peer = self.transport.getPeer() if self.transport is not None else None
                where = f"{peer.host}:{peer.port}" if isinstance(peer, IPv4Address) else "peer"
                logger.warning(
                    "Dropping federation connection to %s: over %d bytes of headers",
                    where,
                    MAX_HEADER_BYTES,
                )
                self.transport.abortConnection()  # type: ignore[union-attr]


class _HeaderCappedFactory(_HTTP11ClientFactory):
    """What ``HTTPConnectionPool`` builds connections with, with the cap."""

    def buildProtocol(self, addr: IAddress | None) -> HTTP11ClientProtocol:
        return _HeaderCappedProtocol(self._quiescentCallback)  # type: ignore[no-untyped-call]


class FederationConnectionPool(HTTPConnectionPool):
    _factory = _HeaderCappedFactory
