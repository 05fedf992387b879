"""Binding one configured listener's addresses: plain TCP, or HTTPS when the
listener has ``tls: true``.

A host without IPv6 cannot bind ``::``; that is fine as long as another address of
the listener binds.  Where ``::`` also takes IPv4 connections, ``0.0.0.0`` after it
is already served.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IOpenSSLServerConnectionCreator
from twisted.protocols.tls import TLSMemoryBIOFactory

from homeserver.config.model import ListenerConfig
from homeserver.http.limits import LISTEN_BACKLOG, ConnectionLimits
from homeserver.http.request import MatrixSite, StreamedBodyFactory
from homeserver.reactor import IServerReactor

logger = logging.getLogger(__name__)


#: The body a listener serving ``federation`` accepts at least: a transaction may
#: hold 50 PDUs and 100 EDUs of up to 64 KiB each; Synapse accepts 200 * 64 KiB
#: (12.5 MiB, its ``MAX_REQUEST_SIZE``) and its senders rely on it.
FEDERATION_MAX_BODY_SIZE = 200 * 64 * 1024


class ListenError(Exception):
    """A listener could not bind; the message says where and why."""


def listener_site(
    reactor: IServerReactor,
    listener: ListenerConfig,
    root: Any,
    max_body_size: int,
    streamed_bodies: StreamedBodyFactory,
) -> MatrixSite:
    """The site serving ``root`` on ``listener``: one per listener, so that its
    connection cap covers all its bind addresses.  ``max_body_size``
    (``max_request_body_size``) is raised to :data:`FEDERATION_MAX_BODY_SIZE` on a
    listener serving ``federation``."""
    if "federation" in listener.resources:
        max_body_size = max(max_body_size, FEDERATION_MAX_BODY_SIZE)
    return MatrixSite(
        root,
        max_body_size=max_body_size,
        reactor=reactor,
        limits=ConnectionLimits(
            header_timeout=listener.request_header_timeout_ms / 1000,
            body_timeout=listener.request_body_timeout_ms / 1000,
            body_min_rate=listener.request_body_min_rate,
            idle_timeout=listener.idle_timeout_ms / 1000,
            max_connections=listener.max_connections,
        ),
        x_forwarded=listener.x_forwarded,
        streamed_bodies=streamed_bodies,
    )


def listen(
    reactor: IServerReactor,
    listener: ListenerConfig,
    site: MatrixSite,
    tls: IOpenSSLServerConnectionCreator | None,
) -> list[IListeningPort]:
    """Bind ``site`` on each of ``listener``'s addresses; with ``tls``, behind TLS.

    Raises :class:`ListenError` when an address cannot be bound (other than an
    unavailable IPv6 one) or none could be.
    """
    # Twisted's ServerFactory is invariant in its protocol type, so listenTCP's
    # ServerFactory[_ProtoWithFactory] admits no Site.
    factory: Any = site if tls is None else TLSMemoryBIOFactory(tls, False, site)
    ports: list[IListeningPort] = []
    bound_addresses: list[str] = []
    for address in listener.bind_addresses:
        try:
            port = reactor.listenTCP(
                listener.port, factory, backlog=LISTEN_BACKLOG, interface=address
            )
        except CannotListenError as error:
            code = getattr(error.socketError, "errno", None)
            if ":" in address and code in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                logger.warning("IPv6 address %s unavailable; skipping it", address)
                continue
            if address == "0.0.0.0" and code == errno.EADDRINUSE and "::" in bound_addresses:
                # "::" listens on IPv4 too where the system maps it (Linux's default),
                # and then holds 0.0.0.0's port: ["::", "0.0.0.0"] means "everywhere"
                # on hosts with and without IPv6 alike.
                logger.info("0.0.0.0:%d is served by [::]:%d", listener.port, listener.port)
                continue
            for bound in ports:  # the server will not start: free what it holds
                bound.stopListening()
            raise ListenError(
                f"cannot listen on {address}:{listener.port}: {error.socketError}"
            ) from None
        ports.append(port)
        bound_addresses.append(address)
        host = port.getHost()
        assert isinstance(host, IPv4Address | IPv6Address)  # a TCP port's address
        logger.info(
            "listening on %s:%d%s (%s)",
            host.host,
            host.port,
            " with TLS" if tls is not None else "",
            ", ".join(sorted(listener.resources)),
        )
    if not ports:
        raise ListenError(f"no usable bind address for port {listener.port}")
    return ports
