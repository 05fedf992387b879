"""The outbound client's streaming GET (``OutboundHttpClient.get_streamed`` with
``stream_body``) against a real HTTP server on 127.0.0.1: the final response's body
reaches the sink as it arrives (never whole in memory), under the same rules as
``get`` — address policy on every redirect hop, the size cap (up front from
``Content-Length``, and on the bytes as they come), the overall timeout — and a
download that stops for any reason drops its connection.

This is what a remote media file behind a ``Location`` goes through
(spec: server-server-api.md#content-repository, content_repository.yaml).
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IPushProducer
from twisted.web.iweb import IResponse
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from homeserver.config.media import DEFAULT_PREVIEW_IP_BLACKLIST
from homeserver.http.outbound import (
    IpNetwork,
    OutboundHttpClient,
    OutboundRefused,
    OutboundTimeout,
    OutboundTooLarge,
    drop_body,
    stream_body,
)
from homeserver.reactor import installed_reactor

BLACKLIST: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(network) for network in DEFAULT_PREVIEW_IP_BLACKLIST
)
LOOPBACK_ONLY: tuple[IpNetwork, ...] = (ipaddress.ip_network("127.0.0.1/32"),)
MIB = 1024 * 1024
#: Random bytes: pieces swapped or lost would not hide among identical ones.
FILE = random.Random(7).randbytes(8 * MIB)
#: What the gated page sends before it waits for the test's word.
FIRST_PART = FILE[:MIB]
CHUNK = 64 * 1024


@attrs.define
class SiteState:
    base: str = ""
    port: int = 0
    paths: list[str] = attrs.Factory(list)
    #: Fired by the test to let the gated page send the rest of its body.
    release: defer.Deferred[None] = attrs.Factory(defer.Deferred)
    #: Fires when a response's connection ends before its body was all sent.
    cut_off: defer.Deferred[None] = attrs.Factory(defer.Deferred)


class _Endless:
    """Writes a body that never ends while the client keeps reading."""

    def __init__(self, request: Any, state: SiteState) -> None:
        self._request = request
        self._state = state
        self._stopped = False

    def resumeProducing(self) -> None:
        if not self._stopped:
            self._request.write(b"x" * CHUNK)

    def stopProducing(self) -> None:
        self._stopped = True


class _Site(Resource):
    isLeaf = True

    def __init__(self, state: SiteState) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._state = state

    def render_GET(self, request: Any) -> bytes | int:
        path = request.path.decode()
        self._state.paths.append(path)
        request.notifyFinish().addErrback(self._cut_off)
        if path == "/file":
            request.setHeader(b"Content-Type", b"application/octet-stream")
            return FILE
        if path == "/moved":
            request.setResponseCode(302)
            request.setHeader(b"Location", b"/gated")
            return b"moved"
        if path == "/moved-away":
            # 127.0.0.2 is loopback too, but only 127.0.0.1 is whitelisted.
            request.setResponseCode(302)
            location = f"http://127.0.0.2:{self._state.port}/file"
            request.setHeader(b"Location", location.encode())
            return b"moved"
        if path == "/gated":
            request.setHeader(b"Content-Length", str(len(FILE)).encode())
            request.write(FIRST_PART)
            gone: list[bool] = []
            request.notifyFinish().addErrback(lambda _: gone.append(True))

            def rest(_: object) -> None:
                if not gone:  # the client may have left meanwhile
                    request.write(FILE[len(FIRST_PART) :])
                    request.finish()

            self._state.release.addCallback(rest)
            return NOT_DONE_YET
        if path == "/endless":
            producer = _Endless(request, self._state)
            request.registerProducer(producer, False)
            return NOT_DONE_YET
        if path == "/declared-huge":
            request.setHeader(b"Content-Length", b"1000000000")
            request.write(b"y" * 1000)
            return NOT_DONE_YET
        request.setResponseCode(404)
        return b"not here"

    def _cut_off(self, _: object) -> None:
        if not self._state.cut_off.called:
            self._state.cut_off.callback(None)


@attrs.define
class CollectingSink:
    """A :class:`~homeserver.http.outbound.BodySink` keeping what it is given (the
    tests' bodies are a few MiB); ``first_piece`` fires with the first one."""

    pieces: list[bytes] = attrs.Factory(list)
    transport: IPushProducer | None = None
    first_piece: defer.Deferred[None] = attrs.Factory(defer.Deferred)
    refuse_after: int | None = None

    def started(self, transport: IPushProducer) -> None:
        self.transport = transport

    def write(self, data: bytes) -> None:
        self.pieces.append(data)
        if not self.first_piece.called:
            self.first_piece.callback(None)
        if self.refuse_after is not None and self.received > self.refuse_after:
            raise ValueError("the sink has had enough")

    @property
    def received(self) -> int:
        return sum(len(piece) for piece in self.pieces)

    def reader(self, max_size: int) -> Any:
        async def read(response: IResponse) -> bytes:
            if response.code != 200:
                drop_body(response)
                return b"dropped"
            await stream_body(response, self, max_size=max_size)
            return b"streamed"

        return read


async def first_piece(sink: CollectingSink, call: defer.Deferred[Any]) -> None:
    """Once the sink has had a piece of the body; fails if the call ends first
    (a body gathered whole before being handed on would never be released)."""
    await defer.DeferredList(
        [sink.first_piece, call], fireOnOneCallback=True, fireOnOneErrback=True
    )
    assert sink.pieces, "the call ended before the sink had any of the body"


@pytest_twisted.async_yield_fixture
async def site() -> AsyncIterator[SiteState]:
    state = SiteState()
    web: Any = Site(_Site(state))  # type: ignore[no-untyped-call]
    port = installed_reactor().listenTCP(0, web, interface="127.0.0.1")
    address = port.getHost()
    assert isinstance(address, IPv4Address)
    state.port = address.port
    state.base = f"http://127.0.0.1:{address.port}"
    yield state
    if not state.release.called:
        state.release.callback(None)
    await defer.maybeDeferred(port.stopListening)


@pytest_twisted.async_yield_fixture
async def client() -> AsyncIterator[OutboundHttpClient]:
    """The default blacklist with 127.0.0.1 whitelisted: the site is reachable."""
    outbound = OutboundHttpClient(
        installed_reactor(),
        ip_blacklist=BLACKLIST,
        ip_whitelist=LOOPBACK_ONLY,
        user_agent="TestAgent/1.0",
    )
    yield outbound
    await outbound.close()


@pytest_twisted.ensureDeferred
async def test_a_body_reaches_the_sink_intact(site: SiteState, client: OutboundHttpClient) -> None:
    sink = CollectingSink()
    response = await client.get_streamed(
        f"{site.base}/file", read_body=sink.reader(len(FILE)), timeout=30
    )
    assert response.code == 200
    assert response.body == b"streamed"
    assert response.headers["content-type"] == "application/octet-stream"
    assert hashlib.sha256(b"".join(sink.pieces)).digest() == hashlib.sha256(FILE).digest()
    # Handed on in the pieces it arrived in, not gathered first.
    assert len(sink.pieces) > 1


@pytest_twisted.ensureDeferred
async def test_the_sink_gets_the_body_before_it_has_all_arrived(
    site: SiteState, client: OutboundHttpClient
) -> None:
    sink = CollectingSink()
    call = defer.ensureDeferred(
        client.get_streamed(f"{site.base}/moved", read_body=sink.reader(len(FILE)), timeout=10)
    )
    # The site sends the rest only once the sink has had some: were the body
    # gathered before being handed on, the call would end in a timeout instead.
    await first_piece(sink, call)
    assert not call.called
    site.release.callback(None)
    response = await call
    assert response.code == 200
    assert response.url == f"{site.base}/gated"
    assert site.paths == ["/moved", "/gated"]
    assert b"".join(sink.pieces) == FILE


@pytest_twisted.ensureDeferred
async def test_an_endless_body_is_cut_off_at_max_size(
    site: SiteState, client: OutboundHttpClient
) -> None:
    sink = CollectingSink()
    with pytest.raises(OutboundTooLarge):
        await client.get_streamed(
            f"{site.base}/endless", read_body=sink.reader(2 * MIB), timeout=30
        )
    # Nothing past the limit reached the sink, and the connection was dropped.
    assert sink.received <= 2 * MIB
    await site.cut_off


@pytest_twisted.ensureDeferred
async def test_a_declared_length_over_max_size_is_refused_before_any_body(
    site: SiteState, client: OutboundHttpClient
) -> None:
    sink = CollectingSink()
    with pytest.raises(OutboundTooLarge, match="Content-Length"):
        await client.get_streamed(
            f"{site.base}/declared-huge", read_body=sink.reader(MIB), timeout=30
        )
    assert sink.pieces == []
    await site.cut_off


@pytest_twisted.ensureDeferred
async def test_a_sink_that_refuses_stops_the_download(
    site: SiteState, client: OutboundHttpClient
) -> None:
    sink = CollectingSink(refuse_after=MIB)
    with pytest.raises(ValueError, match="had enough"):
        await client.get_streamed(
            f"{site.base}/endless", read_body=sink.reader(100 * MIB), timeout=30
        )
    await site.cut_off


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_a_blacklisted_address_is_refused(
    site: SiteState, client: OutboundHttpClient
) -> None:
    sink = CollectingSink()
    with pytest.raises(OutboundRefused):
        await client.get_streamed(
            f"{site.base}/moved-away", read_body=sink.reader(len(FILE)), timeout=30
        )
    assert site.paths == ["/moved-away"]
    assert sink.pieces == []


@pytest_twisted.ensureDeferred
async def test_check_url_applies_to_every_hop(site: SiteState, client: OutboundHttpClient) -> None:
    seen: list[str] = []

    def check(url: str) -> None:
        seen.append(url)
        if url.endswith("/gated"):
            raise PermissionError(url)

    with pytest.raises(PermissionError):
        await client.get_streamed(
            f"{site.base}/moved",
            read_body=CollectingSink().reader(len(FILE)),
            timeout=30,
            check_url=check,
        )
    assert seen == [f"{site.base}/moved", f"{site.base}/gated"]
    assert site.paths == ["/moved"]


@pytest_twisted.ensureDeferred
async def test_a_body_that_stalls_times_out_and_is_dropped(
    site: SiteState, client: OutboundHttpClient
) -> None:
    # The gated page is never released: the body stops after its first part.
    sink = CollectingSink()
    with pytest.raises(OutboundTimeout):
        await client.get_streamed(
            f"{site.base}/gated", read_body=sink.reader(len(FILE)), timeout=0.5
        )
    await site.cut_off


@pytest_twisted.ensureDeferred
async def test_cancelling_drops_the_connection(site: SiteState, client: OutboundHttpClient) -> None:
    sink = CollectingSink()
    call = defer.ensureDeferred(
        client.get_streamed(f"{site.base}/gated", read_body=sink.reader(len(FILE)), timeout=10)
    )
    await first_piece(sink, call)
    call.cancel()
    with pytest.raises(defer.CancelledError):
        await call
    await site.cut_off


@pytest_twisted.ensureDeferred
async def test_other_statuses_are_returned_to_the_reader(
    site: SiteState, client: OutboundHttpClient
) -> None:
    sink = CollectingSink()
    response = await client.get_streamed(
        f"{site.base}/nowhere", read_body=sink.reader(len(FILE)), timeout=30
    )
    assert response.code == 404
    assert response.body == b"dropped"
    assert sink.pieces == []
