"""The WebSocket sync stream: ``GET /_matrix/client/unstable/dev.homeserver/stream``.

One connection is a long-lived ``/sync``: the server pushes each incremental sync
response as a ``sync`` frame as soon as it has news, and the client sends heartbeats,
typing notifications, receipts and presence over the same socket.  The wire protocol
(frames, errors, close codes, back-pressure, resume rules) is described in
``docs/websocket-stream.md``; this module implements it.

Layers, as for every servlet: the handshake is an ordinary request on the client
listener, authenticated and validated here and refused with Matrix errors *before*
the upgrade (:class:`StreamEndpoint`); only then does autobahn take the socket over
(:class:`_StreamProtocol`).  Everything the stream does goes through the same
handlers as the HTTP endpoints (sync, typing, receipts, presence, delivered receipts).

How the upgraded connection relates to the HTTP machinery (``http/request.py``,
``http/channel.py``): autobahn replaces the channel as the transport's protocol, so
the channel never hears of the socket again.  Its receive deadlines cannot fire (the
request is in the "responding" phase, which has none, and the channel no longer sees
data), but it would also never learn that the connection closed, and the site's
connection cap would count the socket for ever.  The protocol therefore hands
``connectionLost`` on to the channel, which frees the slot exactly as for a plain
HTTP connection; until then the stream counts against ``max_connections``.  The
channel also registered itself as the transport's producer; the protocol replaces
it with its own (:class:`_SendGate`, for back-pressure).

spec: client-server-api/_index.md#get_matrixclientv3sync (the ``sync`` frame body),
RFC 6455 (WebSocket), docs/websocket-stream.md (the protocol)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import attrs
from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import defer
from twisted.internet.interfaces import IConsumer, IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import resource, server
from zope.interface import implementer

from homeserver import errors
from homeserver.auth.tokens import AccessTokenHandler, Requester
from homeserver.clock import Clock
from homeserver.errors import TextWithNulError
from homeserver.filtering.handler import FilterHandler
from homeserver.filtering.model import FilterCollection
from homeserver.http.auth import RequestAuthenticator, extract_access_token
from homeserver.http.parsing import (
    check_room_id,
    optional_bool,
    optional_str,
    query_bool,
    query_int,
    query_str,
    require_str,
)
from homeserver.http.request import MatrixRequest
from homeserver.http.server import CORS_HEADERS, encode_json, respond_json
from homeserver.presence.handler import PresenceConnection, PresenceHandler
from homeserver.presence.record import PRESENCE_STATES
from homeserver.ratelimit import RateLimitConfig, RateLimiter
from homeserver.receipts.delivered import DeliveryRecorder
from homeserver.receipts.handler import ReceiptsHandler
from homeserver.streams.token import STREAM_KEYS, StreamToken
from homeserver.sync.handler import SyncHandler, SyncRequest
from homeserver.typing.handler import TypingHandler
from homeserver.util.untrusted_json import parse_json_text

logger = logging.getLogger(__name__)

STREAM_PATH = "/_matrix/client/unstable/dev.homeserver/stream"
_STREAM_PATH_BYTES = STREAM_PATH.encode("ascii")

#: The client's ping interval: default and the range it is clamped to (protocol).
DEFAULT_HEARTBEAT_INTERVAL_MS = 30_000
MIN_HEARTBEAT_INTERVAL_MS = 1_000
MAX_HEARTBEAT_INTERVAL_MS = 300_000
#: No frame at all for this many intervals closes the connection (4000).
HEARTBEAT_TIMEOUT_INTERVALS = 3

#: How long each incremental sync waits for news before it is asked again.  Any
#: value works (an empty answer sends no frame); shorter only costs more wake-ups.
LONG_POLL_MS = 30_000

#: A reader that keeps the socket's send buffer full this long is closed (4002).
SLOW_READER_SECONDS = 60.0

#: The largest frame or message a client may send; typing, receipt and presence
#: frames are a few hundred bytes.  autobahn closes with 1009 past it.
MAX_CLIENT_MESSAGE_BYTES = 64 * 1024

#: Client frames per connection: a bucket of 50 refilling at 10 per second (protocol).
CLIENT_FRAME_LIMIT = RateLimitConfig(per_second=10, burst_count=50)

#: How long shutdown waits for streams to finish their closing handshakes.
_SHUTDOWN_GRACE_SECONDS = 2.0

# Close codes (docs/websocket-stream.md, "Closing").
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INTERNAL_ERROR = 1011
CLOSE_NO_HEARTBEAT = 4000
CLOSE_TOKEN_INVALID = 4001
CLOSE_TOO_SLOW = 4002


@attrs.frozen
class StreamServices:
    """Everything a stream calls: the handlers its frames reach, and its limits."""

    reactor: IReactorTime
    authenticator: RequestAuthenticator
    tokens: AccessTokenHandler
    sync: SyncHandler
    filters: FilterHandler
    typing: TypingHandler
    receipts: ReceiptsHandler
    presence: PresenceHandler
    deliveries: DeliveryRecorder
    #: ``rc_sync``: one token per connection (a connection is a sync that never ends).
    sync_limiter: RateLimiter
    #: ``rc_presence``: presence frames cost what ``PUT /presence`` costs.
    presence_limiter: RateLimiter


@attrs.frozen
class _Session:
    """What the handshake established, handed from the HTTP request to the protocol."""

    request: MatrixRequest
    requester: Requester
    #: Re-checked before each frame (protocol: "Auth expiry").
    access_token: str
    since: StreamToken | None
    sync_filter: FilterCollection
    set_presence: str
    full_state: bool
    heartbeat_interval_ms: int


class StreamEndpoint:
    """The stream for one process: the handshake resource, autobahn's factory and the
    open connections (so shutdown can close them with 1001)."""

    def __init__(self, services: StreamServices) -> None:
        self._factory = _StreamFactory(services)
        self._handshake = _HandshakeResource(services, self._factory)

    def wrap(self, json_resource: resource.Resource) -> resource.Resource:
        """A site root serving the stream path here and every other path (including
        ``OPTIONS`` on the stream path, for CORS preflights) from ``json_resource``."""
        return _ClientRoot(json_resource, self._handshake)

    def close_all(self) -> defer.Deferred[None]:
        """Close every open stream with 1001 ("server shutting down"); fires once they
        have all gone, or after a short grace period (for the reactor's "before
        shutdown" trigger)."""
        return self._factory.close_all()


class _ClientRoot(resource.Resource):
    """The client listener's root resource: requests for the stream path go to the
    handshake (which refuses all but a ``GET`` upgrade with Matrix errors), except
    CORS preflights; every other request goes to the
    :class:`~homeserver.http.server.JsonResource`, unchanged."""

    isLeaf = True

    def __init__(self, json_resource: resource.Resource, handshake: _HandshakeResource) -> None:
        super().__init__()
        self._json = json_resource
        self._handshake = handshake

    def render(self, request: server.Request) -> int | bytes:
        if request.path == _STREAM_PATH_BYTES and request.method != b"OPTIONS":
            return self._handshake.render(request)
        rendered: int | bytes = self._json.render(request)
        return rendered


class _HandshakeResource(resource.Resource):
    """Validates the upgrade request; refusals are Matrix errors (protocol:
    "Handshake failures are plain HTTP Matrix errors before the upgrade")."""

    isLeaf = True

    def __init__(self, services: StreamServices, factory: _StreamFactory) -> None:
        super().__init__()
        self._services = services
        self._factory = factory

    def render(self, request: server.Request) -> int:
        assert isinstance(request, MatrixRequest)
        for name, value in CORS_HEADERS.items():
            request.setHeader(name, value)
        defer.ensureDeferred(self._answer(request))
        return server.NOT_DONE_YET

    async def _answer(self, request: MatrixRequest) -> None:
        try:
            session = await self._accept(request)
        except errors.MatrixError as refused:
            for name, value in refused.headers.items():
                request.setHeader(name, value)
            respond_json(request, refused.status, refused.to_json())
            return
        except Exception:
            logger.error("stream handshake %s failed", request.loggable_uri(), exc_info=True)
            internal = errors.internal_error()
            respond_json(request, internal.status, internal.to_json())
            return
        if getattr(request, "_disconnected", False) or request.channel is None:
            return  # the client left while we checked its token
        self._factory.upgrade(request, session)

    async def _accept(self, request: MatrixRequest) -> _Session:
        method = request.method.decode("ascii", "replace")
        if method not in ("GET", "HEAD"):
            raise errors.method_not_allowed(method, ["GET"])
        if request.body_too_large:
            raise errors.too_large(request.max_body_size)
        if method != "GET" or not _asks_for_websocket(request):
            raise errors.MatrixError(
                HTTPStatus.BAD_REQUEST,
                errors.Codes.UNRECOGNIZED,
                "Expected a WebSocket upgrade (RFC 6455) on this endpoint",
            )
        services = self._services
        requester = await services.authenticator.requester(request)
        services.sync_limiter.ratelimit(requester.user_id)
        since_param = query_str(request, "since")
        since = StreamToken.parse(since_param) if since_param else None
        set_presence = query_str(request, "set_presence", "online")
        if set_presence not in PRESENCE_STATES:
            raise errors.invalid_param("'set_presence' must be online, offline or unavailable")
        full_state = query_bool(request, "full_state") or False
        interval = query_int(request, "heartbeat_interval_ms", DEFAULT_HEARTBEAT_INTERVAL_MS)
        assert interval is not None
        interval = min(max(interval, MIN_HEARTBEAT_INTERVAL_MS), MAX_HEARTBEAT_INTERVAL_MS)
        sync_filter = await self._resolve_filter(requester.user_id, query_str(request, "filter"))
        access_token = extract_access_token(request)
        assert access_token is not None  # authenticated above
        return _Session(
            request=request,
            requester=requester,
            access_token=access_token,
            since=since,
            sync_filter=sync_filter,
            set_presence=set_presence,
            full_state=full_state,
            heartbeat_interval_ms=interval,
        )

    async def _resolve_filter(self, user_id: str, param: str | None) -> FilterCollection:
        try:
            return await self._services.filters.resolve(user_id, param)
        except errors.MatrixError as refused:
            # /sync answers an unknown filter ID 400 M_INVALID_PARAM, as Synapse does;
            # the stream protocol says 404 M_NOT_FOUND, the spec's error for a filter
            # ID that names nothing (GET /user/{userId}/filter/{filterId}).
            named = param is not None and not param.startswith("{")
            if named and refused.errcode == errors.Codes.INVALID_PARAM:
                raise errors.not_found("No such filter") from None
            raise


def _asks_for_websocket(request: MatrixRequest) -> bool:
    """``Upgrade: websocket`` with ``Connection: upgrade`` (RFC 6455 §4.1); the
    finer points (key, version) are autobahn's to check."""
    upgrade = request.getHeader("upgrade") or ""
    connection = request.getHeader("connection") or ""
    return "websocket" in _tokens(upgrade) and "upgrade" in _tokens(connection)


def _tokens(header: str) -> set[str]:
    return {token.strip().lower() for token in header.split(",")}


class _StreamFactory(WebSocketServerFactory):
    """autobahn's factory, building each protocol for the session its handshake
    established (:meth:`upgrade` hands it over; autobahn builds the protocol inside)."""

    def __init__(self, services: StreamServices) -> None:
        # No Server header: it would only announce autobahn's version.  (autobahn's
        # own timers, for the closing handshake, run on txaio's reactor, the global
        # one; the stream's timers use the reactor it is given.)
        super().__init__(reactor=services.reactor, server=None)
        self.setProtocolOptions(
            maxFramePayloadSize=MAX_CLIENT_MESSAGE_BYTES,
            maxMessagePayloadSize=MAX_CLIENT_MESSAGE_BYTES,
            # Close oversized messages and protocol errors with a close frame (1009,
            # 1002...) rather than by dropping the socket, so clients learn why.
            failByDrop=False,
            # The handshake is complete when the protocol is built; the heartbeat
            # (ours, at the application level) detects dead peers.
            autoPingInterval=0,
            webStatus=False,
        )
        self._services = services
        self._pending: _Session | None = None
        self._open: set[_StreamProtocol] = set()

    def upgrade(self, request: MatrixRequest, session: _Session) -> None:
        """Let autobahn take the request's connection over and speak WebSocket on it."""
        self._pending = session
        try:
            result = WebSocketResource(self).render(request)
        finally:
            self._pending = None
        if result is not server.NOT_DONE_YET:
            # The transport went away (autobahn answers 426) or no protocol was built.
            logger.error("stream upgrade of %s failed", request.loggable_uri())
            internal = errors.internal_error()
            respond_json(request, internal.status, internal.to_json())

    def buildProtocol(self, addr: object) -> _StreamProtocol:
        session = self._pending
        assert session is not None, "stream protocols are only built by upgrade()"
        protocol = _StreamProtocol(self._services, session, self._forget)
        protocol.factory = self
        self._open.add(protocol)
        return protocol

    def _forget(self, protocol: _StreamProtocol) -> None:
        self._open.discard(protocol)

    def close_all(self) -> defer.Deferred[None]:
        if not self._open:
            return defer.succeed(None)
        gone = [protocol.close_for_shutdown() for protocol in list(self._open)]
        everyone: defer.Deferred[Any] = defer.DeferredList(gone, consumeErrors=True)
        everyone.addTimeout(_SHUTDOWN_GRACE_SECONDS, self._services.reactor)
        # Past the grace period the reactor's shutdown drops whoever is left.
        return everyone.addBoth(lambda _: None)


@implementer(IPushProducer)
class _SendGate:
    """The connection's producer (Twisted's producer/consumer): the transport pauses
    it when the socket's send buffer is full and resumes it once it has drained."""

    def __init__(self, on_pause: Callable[[], None], on_resume: Callable[[], None]) -> None:
        self.paused = False
        self._on_pause = on_pause
        self._on_resume = on_resume

    def pauseProducing(self) -> None:
        if not self.paused:
            self.paused = True
            self._on_pause()

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            self._on_resume()

    def stopProducing(self) -> None:
        """The connection is closing; ``connectionLost`` cleans up."""


class _StreamProtocol(WebSocketServerProtocol):
    """One open stream.  Two activities share it: the sync loop (:meth:`_run`), which
    sends a ``sync`` frame whenever the user has news, and client frames
    (:meth:`_answer_frame`), each answered with one frame."""

    def __init__(
        self,
        services: StreamServices,
        session: _Session,
        forget: Callable[[_StreamProtocol], None],
    ) -> None:
        super().__init__()
        self._services = services
        self._session = session
        self._forget = forget
        #: The HTTP channel the socket came from; told when the socket closes.
        self._channel: Any = session.request.channel
        self._reactor = services.reactor
        self._heartbeat_timeout = session.heartbeat_interval_ms * HEARTBEAT_TIMEOUT_INTERVALS / 1000
        self._heartbeat: IDelayedCall | None = None
        self._slow_reader: IDelayedCall | None = None
        self._gate = _SendGate(self._send_buffer_full, self._send_buffer_drained)
        self._drained: defer.Deferred[None] | None = None
        self._presence: PresenceConnection | None = None
        self._loop: defer.Deferred[None] | None = None
        #: Typing, receipt and presence frames take effect in the order they came.
        self._writes = defer.DeferredLock()
        self._frames = RateLimiter(Clock(services.reactor), CLIENT_FRAME_LIMIT)
        #: Set once we start closing: nothing more is sent or started.
        self._closing = False
        #: The newest position of each stream in a ``next_batch`` sent on this
        #: connection: an ``ack`` frame acknowledges at most that much.
        self._handed_out = session.since or StreamToken()
        self._gone: defer.Deferred[None] = defer.Deferred()

    # -- autobahn's callbacks ------------------------------------------------------

    def onConnect(self, request: Any) -> None:
        """No subprotocol: the stream has one protocol, versioned by its path."""
        return None

    def onOpen(self) -> None:
        try:
            self._open()
        except Exception:
            logger.error("stream for %s failed to start", self._user_id, exc_info=True)
            self._close(CLOSE_INTERNAL_ERROR, errors.Codes.UNKNOWN, "Internal server error")

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self._closing:
            return
        self._heard_from_client()
        if isBinary:
            self._close(
                CLOSE_UNSUPPORTED_DATA, errors.Codes.NOT_JSON, "Frames must be JSON text frames"
            )
            return
        answering = defer.ensureDeferred(self._answer_frame(payload))
        answering.addErrback(self._failed, "answering a frame")

    def onPing(self, payload: bytes) -> None:
        # "No frame at all": a client library's own keep-alive pings count too.
        self._heard_from_client()
        super().onPing(payload)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        try:
            try:
                super().connectionLost(reason)
            finally:
                self._teardown()
        finally:
            # The channel never saw the socket close (autobahn took it over): tell it,
            # so the site's connection cap frees this connection's slot.
            self._channel.connectionLost(reason)

    # -- opening and closing -------------------------------------------------------

    @property
    def _user_id(self) -> str:
        return self._session.requester.user_id

    def _open(self) -> None:
        session = self._session
        # Back-pressure: the HTTP channel registered itself as the transport's
        # producer; the stream's own gate replaces it.
        consumer = IConsumer(self.transport)
        consumer.unregisterProducer()
        consumer.registerProducer(self._gate, True)
        self._heartbeat = self._reactor.callLater(self._heartbeat_timeout, self._no_heartbeat)
        self._presence = self._services.presence.connect(self._user_id, session.set_presence)
        self._send_frame(
            {
                "type": "hello",
                "heartbeat_interval_ms": session.heartbeat_interval_ms,
                "heartbeat_timeout_ms": session.heartbeat_interval_ms * HEARTBEAT_TIMEOUT_INTERVALS,
            }
        )
        self._loop = defer.ensureDeferred(self._run())
        self._loop.addErrback(self._failed, "syncing")
        logger.info("stream opened for %s (%s)", self._user_id, session.request.client_ip())

    def _close(self, code: int, errcode: str, message: str, **extra: Any) -> None:
        """A closing error: an ``error`` frame without ``id``, then a close frame."""
        if self._closing:
            return
        self._closing = True
        if self.state != self.STATE_OPEN:
            return
        self._send_frame({"type": "error", "errcode": errcode, "error": message, **extra})
        # sendClose only allows 1000 and 3000-4999; 1001, 1003 and 1011 are ours too.
        self.sendCloseFrame(code=code, reasonUtf8=message.encode("utf-8")[:123], isReply=False)

    def close_for_shutdown(self) -> defer.Deferred[None]:
        """Close with 1001; the Deferred fires when the connection is gone."""
        self._close(CLOSE_GOING_AWAY, errors.Codes.UNKNOWN, "Server shutting down")
        return self._gone

    def _teardown(self) -> None:
        self._closing = True
        for timer in (self._heartbeat, self._slow_reader):
            if timer is not None and timer.active():
                timer.cancel()
        self._heartbeat = self._slow_reader = None
        if self._loop is not None and not self._loop.called:
            # Leaves the notifier at once (the sync handler is cancellable).
            self._loop.cancel()
        if self._presence is not None:
            self._presence.close()
            self._presence = None
        self._forget(self)
        request = self._session.request
        # The access log's line for the stream, at its end: its duration is the
        # connection's lifetime.
        request.code = HTTPStatus.SWITCHING_PROTOCOLS
        site = getattr(request, "site", None)
        if site is not None:
            site.log(request)
        logger.info("stream closed for %s", self._user_id)
        if not self._gone.called:
            self._gone.callback(None)

    def _failed(self, failure: Failure, what: str) -> None:
        """A bug (the handlers' refusals are answered as error frames): log it and
        close; the client resumes from its last ``next_batch``."""
        if failure.check(defer.CancelledError) and self._closing:
            return  # the sync loop, cancelled because the connection closed
        logger.error(
            "stream for %s failed while %s: %s", self._user_id, what, failure.getTraceback()
        )
        self._close(CLOSE_INTERNAL_ERROR, errors.Codes.UNKNOWN, "Internal server error")

    # -- heartbeat and back-pressure ----------------------------------------------

    def _heard_from_client(self) -> None:
        if self._heartbeat is not None and self._heartbeat.active():
            self._heartbeat.reset(self._heartbeat_timeout)

    def _no_heartbeat(self) -> None:
        self._heartbeat = None
        self._close(CLOSE_NO_HEARTBEAT, errors.Codes.UNKNOWN, "No heartbeat")

    def _send_buffer_full(self) -> None:
        self._slow_reader = self._reactor.callLater(SLOW_READER_SECONDS, self._too_slow)
        # Stop reading too, as twisted.web's HTTPChannel does: every client frame is
        # answered, so a client that sends without reading would otherwise grow our
        # send buffer without bound.  Its frames wait in the kernel meanwhile, so the
        # heartbeat waits too; the slow-reader deadline covers this time.
        IPushProducer(self.transport).pauseProducing()
        if self._heartbeat is not None and self._heartbeat.active():
            self._heartbeat.cancel()

    def _send_buffer_drained(self) -> None:
        if self._slow_reader is not None and self._slow_reader.active():
            self._slow_reader.cancel()
        self._slow_reader = None
        if self._closing:
            return
        IPushProducer(self.transport).resumeProducing()
        self._heartbeat = self._reactor.callLater(self._heartbeat_timeout, self._no_heartbeat)
        drained, self._drained = self._drained, None
        if drained is not None:
            drained.callback(None)

    def _too_slow(self) -> None:
        self._slow_reader = None
        self._close(CLOSE_TOO_SLOW, errors.Codes.UNKNOWN, "Reader too slow")

    async def _writable(self) -> None:
        """Return once the previous frame has left our send buffer."""
        if self._gate.paused:
            self._drained = defer.Deferred()
            await self._drained

    # -- sending -------------------------------------------------------------------

    def _send_frame(self, frame: dict[str, Any]) -> None:
        if self.state == self.STATE_OPEN:
            self.sendMessage(encode_json(frame))

    async def _send_checked(self, frame: dict[str, Any]) -> bool:
        """Send ``frame`` if the access token is still valid; False once closing."""
        if not await self._token_still_valid():
            return False
        if self._closing:
            return False
        self._send_frame(frame)
        return True

    async def _token_still_valid(self) -> bool:
        """Protocol, "Auth expiry": a token logged out or expired closes with 4001.
        The token cache (auth/tokens.py) makes this a dictionary lookup almost always;
        logout empties the user's entries, so it is noticed at the next frame."""
        if self._closing:
            return False
        try:
            await self._services.tokens.requester_for_token(self._session.access_token)
        except errors.MatrixError as refused:
            if refused.errcode != errors.Codes.UNKNOWN_TOKEN:
                raise
            self._close(CLOSE_TOKEN_INVALID, refused.errcode, refused.message, **refused.extra)
            return False
        return not self._closing

    # -- the sync loop -------------------------------------------------------------

    async def _run(self) -> None:
        """Each incremental sync after the previous one: the first at once, even
        empty (so the client gets a ``next_batch``); later ones only with news.  One
        frame at most is held for the connection: the next sync starts only once the
        previous frame has been written out, so a slow reader gets fewer, bigger
        frames rather than a queue."""
        session = self._session
        since = session.since
        first = True
        while not self._closing:
            await self._writable()
            try:
                result = await self._services.sync.sync_result(
                    session.requester,
                    SyncRequest(
                        since=since,
                        timeout_ms=0 if first else LONG_POLL_MS,
                        full_state=first and session.full_state,
                        filter=session.sync_filter,
                        # Only the client's own token acknowledges: what later frames
                        # carry is acknowledged by ``ack`` frames (or the next connection).
                        acknowledges_since=first,
                    ),
                )
            except errors.MatrixError as refused:
                # What /sync would have answered with this error (a token it cannot
                # use, say): the stream cannot go on from here.
                self._close(CLOSE_INTERNAL_ERROR, refused.errcode, refused.message, **refused.extra)
                return
            body = result.body
            next_batch = StreamToken.parse(body["next_batch"], param="next_batch")
            # An empty answer only moves next_batch: not sending it loses nothing, since
            # resuming from the previous token yields the same nothing.
            if first or result.has_news:
                if not await self._send_checked({"type": "sync", "body": body}):
                    return
                self._handed_out = self._handed_out.advanced_to(next_batch)
                if result.deliveries:
                    self._services.deliveries.delivered(self._user_id, result.deliveries)
            since = next_batch
            first = False

    # -- client frames -------------------------------------------------------------

    async def _answer_frame(self, payload: bytes) -> None:
        """One answer per frame: ``pong``, ``ok`` or ``error`` (with the frame's
        ``id`` when it had a valid one).  Refusals leave the connection open."""
        frame_id: str | int | None = None
        try:
            # Every frame takes from the budget, unreadable ones too.
            wait = self._frames.check(None)
            frame = parse_json_text(payload, "Frame")
            if not isinstance(frame, dict):
                raise errors.bad_json("A frame must be a JSON object")
            frame_id = _frame_id(frame)
            if wait > 0:
                raise errors.limit_exceeded(wait)
            reply = await self._apply(frame)
        except errors.MatrixError as refused:
            reply = {"type": "error", **refused.to_json()}
        except TextWithNulError as refused:
            # A value no check caught reached the database (as JsonResource answers).
            reply = {"type": "error", **errors.invalid_param(str(refused)).to_json()}
        except Exception:
            logger.error("stream frame from %s failed", self._user_id, exc_info=True)
            reply = {"type": "error", **errors.internal_error().to_json()}
        if frame_id is not None:
            reply["id"] = frame_id
        await self._send_checked(reply)

    async def _apply(self, frame: dict[str, Any]) -> dict[str, Any]:
        kind = frame.get("type")
        if kind == "ping":
            active = optional_bool(frame, "active", False)
            if self._presence is not None:
                self._presence.heartbeat(active)
            request = self._session.request
            self._services.tokens.note_request(
                self._session.requester, request.client_ip(), request.getHeader("user-agent")
            )
            return {"type": "pong"}
        if kind == "typing":
            write = self._typing
        elif kind == "receipt":
            write = self._receipt
        elif kind == "presence":
            write = self._set_presence
        elif kind == "ack":
            write = self._ack
        else:
            raise errors.MatrixError(
                HTTPStatus.BAD_REQUEST, errors.Codes.UNRECOGNIZED, "Unknown frame type"
            )
        async with self._writes:
            await write(frame)
        return {"type": "ok"}

    async def _typing(self, frame: dict[str, Any]) -> None:
        """As ``PUT /rooms/{roomId}/typing/{userId}`` (api/client/typing.py)."""
        room_id = require_str(frame, "room_id")
        check_room_id(room_id)
        if "typing" not in frame:
            raise errors.missing_param("typing")
        is_typing = frame["typing"]
        if not isinstance(is_typing, bool):
            raise errors.bad_json("'typing' must be a boolean")
        timeout_ms = 0
        if is_typing:
            if "timeout" not in frame:
                raise errors.missing_param("timeout")
            timeout_ms = frame["timeout"]
            if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool):
                raise errors.bad_json("'timeout' must be an integer")
            if timeout_ms < 0:
                raise errors.invalid_param("'timeout' must not be negative")
        await self._services.typing.set_typing(self._user_id, room_id, is_typing, timeout_ms)

    async def _receipt(self, frame: dict[str, Any]) -> None:
        """As ``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}``."""
        room_id = require_str(frame, "room_id")
        check_room_id(room_id)
        receipt_type = require_str(frame, "receipt_type")
        event_id = require_str(frame, "event_id")
        thread_id = optional_str(frame, "thread_id")
        await self._services.receipts.set_receipt(
            self._user_id, room_id, receipt_type, event_id, thread_id
        )

    async def _ack(self, frame: dict[str, Any]) -> None:
        """The client has what the ``sync`` frames up to ``next_batch`` carried: what
        the server keeps until delivery (to-device messages) may go.  A token ahead of
        what this connection sent is lowered to it (acknowledging is never a way to
        drop what was not received)."""
        token = StreamToken.parse(require_str(frame, "next_batch"), param="next_batch")
        handed_out = self._handed_out
        acknowledged = StreamToken(
            *(min(token.get(key), handed_out.get(key)) for key in STREAM_KEYS)
        )
        await self._services.sync.acknowledge(self._session.requester, acknowledged)

    async def _set_presence(self, frame: dict[str, Any]) -> None:
        """As ``PUT /presence/{userId}/status``, with its rate limit."""
        state = require_str(frame, "presence")
        if state not in PRESENCE_STATES:
            raise errors.invalid_param("'presence' must be online, unavailable or offline")
        status_msg = optional_str(frame, "status_msg")
        self._services.presence_limiter.ratelimit(self._user_id)
        await self._services.presence.set_presence(self._user_id, state, status_msg)


def _frame_id(frame: dict[str, Any]) -> str | int | None:
    """The frame's ``id``, echoed in the answer: a string or an integer."""
    frame_id = frame.get("id")
    if frame_id is None or isinstance(frame_id, str):
        return frame_id
    if isinstance(frame_id, int) and not isinstance(frame_id, bool):
        return frame_id
    raise errors.bad_json("'id' must be a string or an integer")
