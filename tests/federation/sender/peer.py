"""A receiving homeserver for the sender tests: a real HTTP server on loopback that
records the transactions ``PUT`` to it, and an agent that points destination names at
it (in place of server discovery and TLS, which the client tests cover).

The peer answers 200 (``{"pdus": {}}``), or a chosen status, or holds its answers
until the test releases them; a destination can also refuse connections (it points
at a port nothing listens on).
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort
from twisted.web import resource, server
from twisted.web.client import Agent
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from zope.interface import implementer

from homeserver.reactor import installed_reactor
from tests.support.server_process import free_port

SEND_PREFIX = b"/_matrix/federation/v1/send/"


@attrs.frozen
class ReceivedTransaction:
    destination: str
    txn_id: str
    body: dict[str, Any]
    authorization: str

    @property
    def bodies(self) -> list[str]:
        """The ``content.body`` of each PDU that has one (the tests' messages)."""
        return [pdu["content"]["body"] for pdu in self.body["pdus"] if "body" in pdu["content"]]

    @property
    def edus(self) -> list[dict[str, Any]]:
        edus: list[dict[str, Any]] = self.body["edus"]
        return edus


class Peer(resource.Resource):
    """Every destination of a test, on one port: the ``Host`` header says which."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.received: list[ReceivedTransaction] = []
        #: Destination -> the status it answers (200 unless set).
        self.status: dict[str, int] = {}
        #: Destinations whose answers wait for :meth:`release`.
        self.holding: set[str] = set()
        self.held: list[tuple[Any, str]] = []
        #: Destinations whose connections are refused.
        self.refusing: set[str] = set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.port: IListeningPort | None = None

    def start(self) -> None:
        factory: Any = server.Site(self)  # type: ignore[no-untyped-call]
        self.port = installed_reactor().listenTCP(0, factory, interface="127.0.0.1")

    async def stop(self) -> None:
        for request, _ in self.held:
            if not request.finished:
                request.finish()
        self.held.clear()
        if self.port is not None:
            await defer.maybeDeferred(self.port.stopListening)

    def render_PUT(self, request: Any) -> bytes | int:
        destination = (request.getHeader("host") or "").split(":")[0]
        path = request.path
        assert path.startswith(SEND_PREFIX)
        body = json.loads(request.content.read())
        self.received.append(
            ReceivedTransaction(
                destination,
                path[len(SEND_PREFIX) :].decode(),
                body,
                request.getHeader("authorization") or "",
            )
        )
        if destination in self.holding:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.held.append((request, destination))
            return server.NOT_DONE_YET
        return self._answer(request, destination)

    def release(self, *, keep_holding: bool = False) -> None:
        """Answer every held request (and hold no more, unless ``keep_holding``)."""
        if not keep_holding:
            self.holding.clear()
        held, self.held = self.held, []
        for request, destination in held:
            self.in_flight -= 1
            request.write(self._answer(request, destination))
            request.finish()

    def _answer(self, request: Any, destination: str) -> bytes:
        status = self.status.get(destination, 200)
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        if status == 200:
            return b'{"pdus": {}}'
        return json.dumps({"errcode": "M_UNKNOWN", "error": f"status {status}"}).encode()

    def to(self, destination: str) -> list[ReceivedTransaction]:
        return [txn for txn in self.received if txn.destination == destination]


@implementer(IAgent)
class LoopbackAgent:
    """``matrix-federation://<destination>/...`` to the peer over plain HTTP."""

    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._agent = Agent(installed_reactor())  # type: ignore[no-untyped-call]
        #: A port nothing listens on, for refused connections.
        self._closed_port = free_port()

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> defer.Deferred[IResponse]:
        assert uri.startswith(b"matrix-federation://")
        rest = uri[len(b"matrix-federation://") :]
        host, _, path = rest.partition(b"/")
        assert self._peer.port is not None
        port = self._peer.port.getHost().port  # type: ignore[attr-defined]
        if host.decode() in self._peer.refusing:
            port = self._closed_port
        headers = headers.copy() if headers is not None else Headers()
        headers.setRawHeaders(b"Host", [host])
        target = b"http://127.0.0.1:%d/%s" % (port, path)
        return self._agent.request(method, target, headers, bodyProducer)
