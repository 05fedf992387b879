"""The stream's timing rules in-process, on a fake clock: back-pressure, the slow
reader, the heartbeat, and what closing a connection releases (docs/websocket-stream.md).

The real server tests (test_stream.py) cover the protocol end to end; these cover what
takes a minute of wall-clock time or a full socket buffer to see there.  The protocol
runs on a ``StringTransport`` after a real WebSocket handshake, with fakes for the
handlers it calls.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any, cast

from twisted.internet import defer, task
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from homeserver import errors
from homeserver.api.client.stream import (
    LONG_POLL_MS,
    SLOW_READER_SECONDS,
    StreamServices,
    _Session,
    _StreamFactory,
    _StreamProtocol,
)
from homeserver.auth.tokens import AccessTokenHandler, Requester
from homeserver.clock import Clock
from homeserver.filtering.model import DEFAULT_FILTER
from homeserver.http.request import MatrixRequest
from homeserver.presence.handler import PresenceHandler
from homeserver.ratelimit import RateLimitConfig, RateLimiter
from homeserver.receipts.delivered import DeliveryRecorder
from homeserver.streams.token import StreamToken
from homeserver.sync.handler import SyncHandler, SyncRequest, SyncResult

ALICE = Requester(user_id="@alice:hs", device_id="DEV", access_token_id=1, is_admin=False)

HANDSHAKE = (
    b"GET /_matrix/client/unstable/dev.homeserver/stream HTTP/1.1\r\n"
    b"Host: hs\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


class FakeSync:
    def __init__(self) -> None:
        self.requests: list[SyncRequest] = []
        self.pending: list[defer.Deferred[SyncResult]] = []

    async def sync_result(self, requester: Requester, request: SyncRequest) -> SyncResult:
        answer: defer.Deferred[SyncResult] = defer.Deferred()
        self.requests.append(request)
        self.pending.append(answer)
        return await answer

    def answer(self, next_batch: str, *, news: bool, deliveries: dict[str, str]) -> None:
        rooms: dict[str, Any] = {"join": {"!r:hs": {"timeline": {"events": []}}} if news else {}}
        self.pending[-1].callback(
            SyncResult({"next_batch": next_batch, "rooms": rooms}, deliveries, news)
        )


class FakeTokens:
    def __init__(self) -> None:
        self.revoked = False

    async def requester_for_token(self, token: str) -> Requester:
        if self.revoked:
            raise errors.unknown_token()
        return ALICE

    def note_request(self, requester: Requester, ip: str, user_agent: str | None) -> None:
        pass


class FakePresenceConnection:
    def __init__(self) -> None:
        self.heartbeats: list[bool] = []
        self.closed = False

    def heartbeat(self, active: bool) -> None:
        self.heartbeats.append(active)

    def close(self) -> None:
        self.closed = True


class FakePresence:
    def __init__(self) -> None:
        self.connection = FakePresenceConnection()

    def connect(self, user_id: str, set_presence: str) -> FakePresenceConnection:
        return self.connection


class FakeDeliveries:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, dict[str, str]]] = []

    def delivered(self, user_id: str, deliveries: dict[str, str]) -> None:
        self.recorded.append((user_id, dict(deliveries)))


class FakeChannel:
    """The HTTP channel the upgraded socket came from."""

    def __init__(self) -> None:
        self.lost = False

    def connectionLost(self, reason: Failure) -> None:
        self.lost = True


class FakeRequest:
    site = None
    code = 200

    def __init__(self) -> None:
        self.channel = FakeChannel()

    def client_ip(self) -> str:
        return "127.0.0.1"

    def getHeader(self, name: str) -> str | None:
        return None


@implementer(IPushProducer)
class HttpChannelProducer:
    """Stands for the HTTP channel, registered as the transport's producer before
    the upgrade."""

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class Harness:
    def __init__(self, heartbeat_interval_ms: int = 30_000) -> None:
        self.clock = task.Clock()
        self.sync = FakeSync()
        self.tokens = FakeTokens()
        self.presence = FakePresence()
        self.deliveries = FakeDeliveries()
        self.request = FakeRequest()
        self.forgotten = False
        limiter = RateLimiter(Clock(self.clock), RateLimitConfig(per_second=1, burst_count=10))
        services = StreamServices(
            reactor=self.clock,
            authenticator=cast(Any, None),
            tokens=cast(AccessTokenHandler, self.tokens),
            sync=cast(SyncHandler, self.sync),
            filters=cast(Any, None),
            typing=cast(Any, None),
            receipts=cast(Any, None),
            presence=cast(PresenceHandler, self.presence),
            deliveries=cast(DeliveryRecorder, self.deliveries),
            sync_limiter=limiter,
            presence_limiter=limiter,
        )
        session = _Session(
            request=cast(MatrixRequest, self.request),
            requester=ALICE,
            access_token="token",
            since=None,
            sync_filter=DEFAULT_FILTER,
            set_presence="online",
            full_state=False,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        factory = _StreamFactory(services)
        # No autobahn timers on the global reactor: the handshake completes at once
        # and the tests watch the close frame, not the closing handshake.
        factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0)
        self.protocol = _StreamProtocol(services, session, self._forget)
        self.protocol.factory = factory
        self.transport = StringTransport()
        self.transport.registerProducer(HttpChannelProducer(), True)
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(HANDSHAKE)
        response, _, self._unread = self.transport.value().partition(b"\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 101"), response
        self.transport.clear()

    def _forget(self, protocol: _StreamProtocol) -> None:
        self.forgotten = True

    def frames(self) -> list[tuple[int, bytes]]:
        """The frames the server wrote since the last call: (opcode, payload)."""
        data = self._unread + self.transport.value()
        self._unread = b""
        self.transport.clear()
        frames = []
        while data:
            opcode = data[0] & 0x0F
            length = data[1] & 0x7F
            offset = 2
            if length == 126:
                (length,) = struct.unpack("!H", data[2:4])
                offset = 4
            elif length == 127:
                (length,) = struct.unpack("!Q", data[2:10])
                offset = 10
            frames.append((opcode, data[offset : offset + length]))
            data = data[offset + length :]
        return frames

    def json_frames(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for opcode, payload in self.frames() if opcode == 1]

    def close_code(self, frames: list[tuple[int, bytes]]) -> int | None:
        for opcode, payload in frames:
            if opcode == 8:
                code: int = struct.unpack("!H", payload[:2])[0]
                return code
        return None

    def send(self, frame: dict[str, Any]) -> None:
        """A masked text frame from the client, as RFC 6455 §5.3 requires."""
        payload = json.dumps(frame).encode("utf-8")
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.protocol.dataReceived(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    @property
    def producer(self) -> IPushProducer:
        """What the transport pauses when its send buffer is full."""
        return cast(IPushProducer, self.transport.producer)


def test_no_sync_is_computed_while_the_last_frame_waits_in_the_send_buffer() -> None:
    harness = Harness()
    assert [f["type"] for f in harness.json_frames()] == ["hello"]
    assert harness.sync.requests[0].timeout_ms == 0
    # The reader stops reading: the transport pauses its producer.
    harness.producer.pauseProducing()
    harness.sync.answer("s1", news=False, deliveries={"!r:hs": "$e"})
    frames = harness.json_frames()
    assert [f["type"] for f in frames] == ["sync"]
    assert harness.deliveries.recorded == [("@alice:hs", {"!r:hs": "$e"})]
    # The next sync waits for the frame to leave the buffer.
    assert len(harness.sync.requests) == 1
    harness.producer.resumeProducing()
    assert len(harness.sync.requests) == 2
    second = harness.sync.requests[1]
    assert second.since == StreamToken.parse("s1")
    assert (second.timeout_ms, second.full_state) == (LONG_POLL_MS, False)


def test_an_incremental_sync_without_news_sends_no_frame_but_moves_on() -> None:
    harness = Harness()
    harness.sync.answer("s1", news=False, deliveries={})
    harness.json_frames()
    harness.sync.answer("s2", news=False, deliveries={})
    assert harness.json_frames() == []
    assert harness.sync.requests[-1].since == StreamToken.parse("s2")
    harness.sync.answer("s3", news=True, deliveries={})
    assert [f["body"]["next_batch"] for f in harness.json_frames()] == ["s3"]


def test_a_reader_that_keeps_the_buffer_full_for_a_minute_is_closed_with_4002() -> None:
    harness = Harness(heartbeat_interval_ms=1000)
    harness.json_frames()
    harness.producer.pauseProducing()
    # The server stops reading meanwhile, so the heartbeat (3 s here) waits too.
    assert harness.transport.producerState == "paused"
    harness.clock.advance(SLOW_READER_SECONDS - 1)
    assert harness.frames() == []
    harness.producer.resumeProducing()  # drained in time: the clock starts again
    assert harness.transport.producerState == "producing"
    harness.send({"type": "ping"})
    harness.json_frames()
    harness.producer.pauseProducing()
    harness.clock.advance(SLOW_READER_SECONDS - 1)
    assert harness.frames() == []
    harness.clock.advance(1)
    frames = harness.frames()
    assert json.loads(frames[0][1]) == {
        "type": "error",
        "errcode": "M_UNKNOWN",
        "error": "Reader too slow",
    }
    assert harness.close_code(frames) == 4002


def test_any_frame_resets_the_heartbeat_and_none_for_three_intervals_closes_with_4000() -> None:
    harness = Harness(heartbeat_interval_ms=1000)
    harness.json_frames()
    harness.clock.advance(2.9)
    harness.send({"type": "ping", "id": 1, "active": True})
    assert harness.json_frames() == [{"type": "pong", "id": 1}]
    assert harness.presence.connection.heartbeats == [True]
    harness.clock.advance(2.9)
    assert harness.frames() == []
    harness.clock.advance(0.2)
    frames = harness.frames()
    assert json.loads(frames[0][1])["error"] == "No heartbeat"
    assert harness.close_code(frames) == 4000


def test_a_revoked_token_closes_with_4001_before_the_next_sync_frame() -> None:
    harness = Harness()
    harness.sync.answer("s1", news=False, deliveries={})
    harness.json_frames()
    harness.tokens.revoked = True
    harness.sync.answer("s2", news=True, deliveries={"!r:hs": "$e"})
    frames = harness.frames()
    assert json.loads(frames[0][1])["errcode"] == "M_UNKNOWN_TOKEN"
    assert harness.close_code(frames) == 4001
    # Nothing was sent, so nothing was delivered.
    assert harness.deliveries.recorded == []


def test_losing_the_connection_cancels_the_sync_and_releases_everything() -> None:
    harness = Harness()
    harness.sync.answer("s1", news=False, deliveries={})
    waiting = harness.sync.pending[-1]
    harness.protocol.connectionLost(Failure(ConnectionDone()))
    assert waiting.called  # cancelled: the long-poll leaves the notifier
    assert harness.presence.connection.closed
    # The HTTP channel hears of it, so the listener's connection cap frees the slot.
    assert harness.request.channel.lost
    assert harness.forgotten
