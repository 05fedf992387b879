"""Receive deadlines, the connection cap and forwarded addresses, on a fake clock.

The channel is driven byte by byte through an in-memory transport, so every
deadline is checked exactly, without waiting.  tests/http/test_slow_clients.py
checks the same behaviour against a real server process.
"""

from __future__ import annotations

import logging

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web import resource, server

from homeserver.http.channel import MatrixChannel, Phase
from homeserver.http.limits import ConnectionLimits
from homeserver.http.request import MatrixRequest, MatrixSite

PEER = IPv4Address("TCP", "192.0.2.1", 50000)
LIMITS = ConnectionLimits(
    header_timeout=10, body_timeout=60, body_min_rate=500, idle_timeout=75, max_connections=3
)


class Recorder(resource.Resource):
    """Answers ``/now`` at once and leaves every other request pending."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[MatrixRequest] = []

    def render(self, request: server.Request) -> bytes | int:
        assert isinstance(request, MatrixRequest)
        self.requests.append(request)
        if request.path == b"/now":
            return b"ok"
        return server.NOT_DONE_YET


class Connection:
    def __init__(self, site: MatrixSite) -> None:
        channel = site.buildProtocol(PEER)
        assert isinstance(channel, MatrixChannel)
        self.channel = channel
        self.transport = StringTransport(peerAddress=PEER)
        channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def phase(self) -> Phase:
        # A method, not an attribute or property: the type checker would otherwise
        # keep the phase one assert saw through the calls that change it.
        return self.channel.phase

    @property
    def closing(self) -> bool:
        return bool(self.transport.disconnecting)

    def lose(self) -> None:
        self.channel.connectionLost(Failure(ConnectionDone()))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def site(clock: Clock, recorder: Recorder) -> MatrixSite:
    return MatrixSite(recorder, max_body_size=1024 * 1024, reactor=clock, limits=LIMITS)


def test_trickled_headers_hit_the_deadline_however_often_bytes_arrive(
    site: MatrixSite, clock: Clock
) -> None:
    conn = Connection(site)
    head = b"GET /pending HTTP/1.1\r\nX-Padding: " + b"a" * 200
    for byte in head[:49]:
        conn.send(bytes([byte]))
        clock.advance(0.2)
    assert not conn.closing  # 9.8 s in, and a byte every 0.2 s
    conn.send(head[49:50])
    clock.advance(0.21)  # (fifty float steps of 0.2 add up to a hair under 10)
    assert conn.closing
    assert conn.transport.value().startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_connection_that_sends_nothing_is_closed_without_a_response(
    site: MatrixSite, clock: Clock
) -> None:
    conn = Connection(site)
    clock.advance(9.9)
    assert not conn.closing
    clock.advance(0.1)
    assert conn.closing
    assert conn.transport.value() == b""


def body_request(length: int) -> bytes:
    return (
        b"POST /pending HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + str(length).encode()
        + b"\r\n\r\n"
    )


def test_body_slower_than_the_minimum_rate_hits_the_deadline(
    site: MatrixSite, clock: Clock, recorder: Recorder
) -> None:
    conn = Connection(site)
    conn.send(body_request(10_000))
    assert conn.phase() is Phase.BODY
    for _ in range(59):
        conn.send(b"x")  # 1 byte/s: each pushes the deadline back 1/500 s
        clock.advance(1)
    assert not conn.closing
    clock.advance(1.2)
    assert conn.closing
    assert conn.transport.value().startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert recorder.requests == []


def test_body_at_the_minimum_rate_may_take_longer_than_the_timeout(
    site: MatrixSite, clock: Clock, recorder: Recorder
) -> None:
    conn = Connection(site)
    conn.send(body_request(100_000))
    for _ in range(100):  # 1,000 bytes/s for 100 s: twice the minimum rate
        conn.send(b"x" * 1000)
        clock.advance(1)
    assert not conn.closing
    (request,) = recorder.requests
    assert request.content is not None
    assert request.content.getvalue() == b"x" * 100_000


def test_response_in_progress_has_no_deadline_then_idle_deadline_applies(
    site: MatrixSite, clock: Clock, recorder: Recorder
) -> None:
    conn = Connection(site)
    conn.send(b"GET /pending HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.phase() is Phase.RESPONDING
    clock.advance(3600)  # a long poll, however long, is the server's business
    assert not conn.closing
    (request,) = recorder.requests
    request.write(b"done")
    request.finish()
    assert conn.phase() is Phase.IDLE
    answered = conn.transport.value()
    clock.advance(74.9)
    assert not conn.closing
    clock.advance(0.1)
    assert conn.closing
    assert conn.transport.value() == answered  # idle: closed without a 408


def test_next_request_on_kept_alive_connection_gets_a_fresh_header_deadline(
    site: MatrixSite, clock: Clock
) -> None:
    conn = Connection(site)
    conn.send(b"GET /now HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.phase() is Phase.IDLE
    clock.advance(70)
    conn.send(b"G")
    assert conn.phase() is Phase.HEADERS
    clock.advance(9.9)  # past the idle deadline (75 s), within the header one
    assert not conn.closing
    clock.advance(0.1)
    assert conn.closing
    assert conn.transport.value().endswith(b'Request not received in time"}')


def test_pipelined_request_is_served_after_the_first(
    site: MatrixSite, clock: Clock, recorder: Recorder
) -> None:
    conn = Connection(site)
    conn.send(b"GET /now HTTP/1.1\r\nHost: x\r\n\r\nGET /pending HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [request.path for request in recorder.requests] == [b"/now", b"/pending"]
    assert conn.phase() is Phase.RESPONDING
    clock.advance(600)
    assert not conn.closing


def test_connections_past_the_cap_are_refused_until_one_closes(site: MatrixSite) -> None:
    open_ = [Connection(site) for _ in range(3)]
    assert site.open_connections == 3
    assert site.buildProtocol(PEER) is None
    open_[0].lose()
    assert site.open_connections == 2
    assert isinstance(site.buildProtocol(PEER), MatrixChannel)


def test_reaching_the_cap_is_logged_once_per_interval(
    site: MatrixSite, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        Connection(site)
    with caplog.at_level(logging.WARNING, logger="homeserver.http.request"):
        for _ in range(5):
            assert site.buildProtocol(PEER) is None
        clock.advance(61)
        assert site.buildProtocol(PEER) is None
    assert [r.getMessage() for r in caplog.records] == [
        "3 connections open (max_connections); refusing new connections"
    ] * 2


FORWARDED = (
    b"GET /now HTTP/1.1\r\nHost: x\r\n"
    b"X-Forwarded-For: 1.2.3.4, 198.51.100.2\r\nX-Forwarded-Proto: https\r\n\r\n"
)


def test_forwarded_headers_are_believed_on_x_forwarded_listeners(
    clock: Clock, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    site = MatrixSite(recorder, max_body_size=1024, reactor=clock, x_forwarded=True)
    with caplog.at_level(logging.INFO, logger="homeserver.access"):
        Connection(site).send(FORWARDED)
    (request,) = recorder.requests
    assert request.client_ip() == "198.51.100.2"
    assert request.isSecure()
    assert request.prePathURL().startswith(b"https://")
    assert caplog.records[-1].getMessage().startswith("198.51.100.2 - GET /now 200")


def test_forwarded_headers_are_ignored_elsewhere(clock: Clock, recorder: Recorder) -> None:
    site = MatrixSite(recorder, max_body_size=1024, reactor=clock)
    Connection(site).send(FORWARDED)
    (request,) = recorder.requests
    assert request.client_ip() == "192.0.2.1"
    assert not request.isSecure()


def test_unparsable_forwarded_for_falls_back_to_the_peer(clock: Clock, recorder: Recorder) -> None:
    site = MatrixSite(recorder, max_body_size=1024, reactor=clock, x_forwarded=True)
    Connection(site).send(b"GET /now HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: unknown\r\n\r\n")
    (request,) = recorder.requests
    assert request.client_ip() == "192.0.2.1"
