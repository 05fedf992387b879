"""The server's one outbound HTTP client: URL previews (GET) and pushers (POST to
push gateways and Web Push services); federation is meant to go through it too.

docs: ../shared/DESIGN.md, "Security by construction": outbound HTTP "refuses private
address ranges unless configured".  A user who can make the server fetch a URL (a URL
preview, spec: client-server-api/modules/content_repo.md, ``GET /media/preview_url``)
must not be able to reach the server's own network: the loopback admin API, cloud
metadata endpoints, the database.

Where the check sits.  Checking a URL's host before the request and connecting later
would leave a gap (DNS rebinding: the name resolves to a public address for the check
and to 127.0.0.1 for the connection).  Instead the Agent is given a reactor whose
``nameResolver`` drops every address that is blacklisted and not whitelisted, so the
addresses left are exactly the ones ``HostnameEndpoint`` connects to.  IP-literal hosts
go through the same resolver (``HostnameEndpoint`` resolves them too, which the tests
check), as does every redirect hop, which this client follows itself.

Limits are hard: the body is read into memory only up to ``max_size`` (the connection is
dropped as soon as more arrives, or at once when ``Content-Length`` says so), and the
whole exchange, redirects included, is cancelled after ``timeout`` seconds.  A body too
large to hold (a remote media file behind a ``Location``) is not read into memory at
all: :meth:`OutboundHttpClient.get_streamed` hands the final response to the caller's
reader, which passes it on as it arrives (:func:`stream_body` to a :class:`BodySink`,
under the same ``max_size`` rule), inside the same timeout.

Why not treq: its ``HTTPClient`` always wraps the agent in gzip decoding (a small
compressed body can inflate far past ``max_size`` within one network read before any
cap sees it) and a cookie jar (cookies would leak between users' previews).  What it
would add on top of ``Agent`` is small, so this module uses ``Agent`` directly and asks
for ``identity`` encoding.

The pieces that make a connection safe — :class:`AddressPolicy`,
:class:`FilteringResolver` and :class:`FilteringReactor` (the filtered name
resolution), :func:`read_capped_body`, :func:`stream_body` — are public: the
federation client (``federation/client/``) builds its own Agent (server discovery,
its own TLS trust) on the same pieces.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast
from typing import Protocol as TypingProtocol
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import attrs
from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IHostnameResolver,
    IHostResolution,
    IPushProducer,
    IReactorPluggableNameResolver,
    IResolutionReceiver,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IPolicyForHTTPS, IResponse
from zope.interface import directlyProvides, implementer, providedBy

from homeserver.reactor import IServerReactor

logger = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Statuses whose ``Location`` is followed (RFC 9110 §15.4); 300 and 304 are answers.
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})

#: Idle keep-alive connections kept per host, and for how long: previews of one site
#: tend to come in bursts (a page, then its image), rarely more.
MAX_PERSISTENT_PER_HOST = 2
CACHED_CONNECTION_SECONDS = 30


class OutboundError(Exception):
    """The request failed: DNS, connection, malformed response, too many redirects."""


class OutboundRefused(OutboundError):
    """Not attempted: a blacklisted address, or a scheme other than http(s)."""

    def __init__(self, message: str, *, blocked_addresses: Sequence[str] = ()) -> None:
        super().__init__(message)
        #: The addresses refused, when that is why; () for a refused scheme.  For logs:
        #: what a name resolves to inside the server's network is not for its users.
        self.blocked_addresses = tuple(blocked_addresses)


class OutboundTooLarge(OutboundError):
    """The body is larger than the caller's ``max_size``; the connection was dropped."""


class OutboundTimeout(OutboundError):
    """The exchange (redirects and body included) took longer than ``timeout``."""


@attrs.frozen
class OutboundResponse:
    #: The final response's status; redirects (followed) are never returned.
    code: int
    #: Lower-cased header names; repeated headers joined with ", " (RFC 9110 §5.3).
    headers: Mapping[str, str]
    body: bytes
    #: The URL the response came from, after redirects.
    url: str


class AddressPolicy:
    """Which IP addresses may be connected to: all but those in ``blacklist`` that are
    not also in ``whitelist``."""

    def __init__(self, blacklist: Sequence[IpNetwork], whitelist: Sequence[IpNetwork]) -> None:
        self._blacklist = tuple(blacklist)
        self._whitelist = tuple(whitelist)

    def allows(self, host: str) -> bool:
        forms = _address_forms(host)
        if not forms:
            return False  # Not an IP address: nothing we could judge, so nothing we allow.
        if not any(form in network for form in forms for network in self._blacklist):
            return True
        return any(form in network for form in forms for network in self._whitelist)

    def whitelisted(self, host: str) -> bool:
        """``host`` is an IP address the whitelist names (a host name never is)."""
        forms = _address_forms(host)
        return any(form in network for form in forms for network in self._whitelist)


def _address_forms(host: str) -> list[IpAddress]:
    """The addresses ``host`` reaches (none if it is not an IP address)."""
    try:
        # A scope ("fe80::1%eth0") says which interface, not which address.
        address: IpAddress = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return []
    forms: list[IpAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:127.0.0.1 reaches 127.0.0.1 through a dual-stack socket, so it is
        # judged as that IPv4 address (as well as itself, should a list name it).
        forms.append(address.ipv4_mapped)
    return forms


@implementer(IResolutionReceiver)
class _FilteringReceiver:
    """Passes on the addresses the policy allows; records the others."""

    def __init__(
        self, receiver: IResolutionReceiver, policy: AddressPolicy, refused: list[str]
    ) -> None:
        self._receiver = receiver
        self._policy = policy
        self._refused = refused

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        self._receiver.resolutionBegan(resolutionInProgress)

    def addressResolved(self, address: IAddress) -> None:
        if isinstance(address, IPv4Address | IPv6Address) and self._policy.allows(address.host):
            self._receiver.addressResolved(address)
            return
        host = getattr(address, "host", repr(address))
        logger.info("Refusing outbound connection to blocked address %s", host)
        self._refused.append(str(host))

    def resolutionComplete(self) -> None:
        self._receiver.resolutionComplete()


@implementer(IHostnameResolver)
class FilteringResolver:
    """The reactor's resolver, with blocked addresses dropped from every answer.

    ``refused`` collects what was dropped, so a lookup that came back empty can be told
    apart from one that found nothing (``HostnameEndpoint`` reports both as
    ``DNSLookupError``).
    """

    def __init__(self, resolver: IHostnameResolver, policy: AddressPolicy) -> None:
        self._resolver = resolver
        self._policy = policy
        self.refused: list[str] = []

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        receiver = _FilteringReceiver(resolutionReceiver, self._policy, self.refused)
        return self._resolver.resolveHostName(
            receiver, hostName, portNumber, addressTypes, transportSemantics
        )


@implementer(IReactorPluggableNameResolver)
class FilteringReactor:
    """The real reactor, except that its ``nameResolver`` is a :class:`FilteringResolver`.

    It provides every interface the real reactor does (``HostnameEndpoint`` and the TLS
    wrapper ask for ``IReactorTCP``, ``IReactorTime``), delegating to it.
    """

    def __init__(self, reactor: object, resolver: IHostnameResolver) -> None:
        self._reactor = reactor
        self._resolver = resolver
        directlyProvides(self, *providedBy(reactor), IReactorPluggableNameResolver)

    @property
    def nameResolver(self) -> IHostnameResolver:
        return self._resolver

    def installNameResolver(self, resolver: IHostnameResolver) -> IHostnameResolver:
        raise NotImplementedError("the outbound client's resolver is fixed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)


class _CappedBody(Protocol):
    """Collects a response body, dropping the connection past ``max_size`` bytes."""

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._chunks: list[bytes] = []
        self._size = 0
        self._done = False
        self.finished: defer.Deferred[bytes] = defer.Deferred(lambda _: self._abort())

    def dataReceived(self, data: bytes) -> None:
        if self._done:
            return
        self._size += len(data)
        if self._size > self._max_size:
            self._abort()
            self.finished.errback(
                OutboundTooLarge(f"response body is larger than {self._max_size} bytes")
            )
            return
        self._chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._done:
            return
        self._done = True
        # PotentialDataLoss: no Content-Length and not chunked, so the end of the
        # connection is the end of the body (RFC 9112 §6.3), as every browser takes it.
        if reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self._chunks))
        else:
            self.finished.errback(
                OutboundError(f"connection lost reading the body: {reason.value}")
            )

    def _abort(self) -> None:
        self._done = True
        self._chunks.clear()
        if self.transport is not None:
            # Stops reading and closes the connection: nothing more is buffered.
            cast(IPushProducer, self.transport).stopProducing()


def drop_body(response: IResponse) -> None:
    """Close the connection of a response whose body is not wanted (redirects, bodies
    announced too large) instead of reading it."""
    body = _CappedBody(0)
    response.deliverBody(body)  # type: ignore[no-untyped-call]
    body.finished.addErrback(lambda _: None)
    body.finished.cancel()


async def read_capped_body(response: IResponse, max_size: int) -> bytes:
    if response.length is not UNKNOWN_LENGTH and cast(int, response.length) > max_size:
        drop_body(response)
        raise OutboundTooLarge(f"Content-Length {response.length} is larger than {max_size} bytes")
    body = _CappedBody(max_size)
    response.deliverBody(body)  # type: ignore[no-untyped-call]
    return await body.finished


class BodySink(TypingProtocol):
    """Where a streamed body goes (:func:`stream_body`)."""

    def started(self, transport: IPushProducer) -> None:
        """Before any data: the producer to pause while the sink falls behind."""

    def write(self, data: bytes) -> None:
        """The next piece of the body; raising stops the download with that error."""


async def stream_body(response: IResponse, sink: BodySink, *, max_size: int) -> None:
    """Hand ``response``'s body to ``sink`` as it arrives; returns once all of it
    has been handed on.  The limits of :func:`read_capped_body` hold: a
    ``Content-Length`` over ``max_size`` is refused before anything is read, and
    the connection is dropped as soon as more than ``max_size`` bytes arrive
    (``OutboundTooLarge``).  ``OutboundError`` if the connection is lost first, or
    whatever ``sink.write`` raised (the connection is dropped at once).  Flow
    control is the sink's: it gets the body's transport to pause reading while it
    catches up (the disk, for media).  Cancelling drops the connection."""
    if response.length is not UNKNOWN_LENGTH and cast(int, response.length) > max_size:
        drop_body(response)
        raise OutboundTooLarge(f"Content-Length {response.length} is larger than {max_size} bytes")
    body = _StreamedBody(sink, max_size)
    response.deliverBody(body)  # type: ignore[no-untyped-call]
    await body.finished


class _StreamedBody(Protocol):
    """Hands a response body on to a :class:`BodySink`, dropping the connection
    past ``max_size`` bytes or when the sink refuses what it is given."""

    def __init__(self, sink: BodySink, max_size: int) -> None:
        self._sink = sink
        self._max_size = max_size
        self._size = 0
        self._done = False
        self.finished: defer.Deferred[None] = defer.Deferred(lambda _: self._abort())

    def connectionMade(self) -> None:
        self._sink.started(cast(IPushProducer, self.transport))

    def dataReceived(self, data: bytes) -> None:
        if self._done:
            return
        self._size += len(data)
        if self._size > self._max_size:
            self._fail(OutboundTooLarge(f"response body is larger than {self._max_size} bytes"))
            return
        try:
            self._sink.write(data)
        except Exception as error:  # the sink refuses the body: stop reading it
            self._fail(error)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._done:
            return
        self._done = True
        # PotentialDataLoss: no Content-Length and not chunked, so the end of the
        # connection is the end of the body (RFC 9112 §6.3).
        if reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(None)
        else:
            self.finished.errback(
                OutboundError(f"connection lost reading the body: {reason.value}")
            )

    def _fail(self, error: Exception) -> None:
        self._abort()
        self.finished.errback(error)

    def _abort(self) -> None:
        self._done = True
        if self.transport is not None:
            # Stops reading and closes the connection: nothing more arrives.
            cast(IPushProducer, self.transport).stopProducing()


#: Reads the final response of :meth:`OutboundHttpClient.get_streamed` (redirects are
#: followed first): its result becomes the returned ``OutboundResponse.body``.  It must
#: read or drop the body, and bound what it reads (:func:`read_capped_body`,
#: :func:`stream_body`, :func:`drop_body`).
BodyReader = Callable[[IResponse], Awaitable[bytes]]


def _request_target(url: str) -> bytes:
    """``url`` as the ASCII bytes ``Agent`` wants (IDNA host, percent-encoded path and
    query, no fragment); ``OutboundRefused`` for schemes other than http(s)."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        port = parts.port
    except ValueError as error:
        raise OutboundError(f"malformed URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused(f"scheme {parts.scheme!r} is not fetched")
    if not hostname:
        raise OutboundError("URL has no host")
    try:
        ipaddress.ip_address(hostname.split("%", 1)[0])
        host = f"[{hostname}]" if ":" in hostname else hostname
    except ValueError:
        try:
            host = hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise OutboundError(f"invalid host name {hostname!r}") from None
    netloc = host if port is None else f"{host}:{port}"
    # What browsers do to a URL typed with spaces or non-ASCII text: percent-encode
    # those, leave what is already encoded (and every reserved character) alone.
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
    return urlunsplit((parts.scheme, netloc, path, query, "")).encode("ascii")


def _flat_headers(headers: Headers) -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, values in headers.getAllRawHeaders():
        flat[name.decode("latin-1").lower()] = ", ".join(v.decode("latin-1") for v in values)
    return flat


def _decode_location(raw: bytes) -> str:
    # Location should be ASCII; servers that send UTF-8 mean UTF-8 (as browsers read it).
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class OutboundHttpClient:
    """GETs and POSTs to URLs on the internet, never to the addresses the policy blocks."""

    def __init__(
        self,
        reactor: IServerReactor,
        *,
        ip_blacklist: Sequence[IpNetwork],
        ip_whitelist: Sequence[IpNetwork],
        user_agent: str,
        tls_policy: IPolicyForHTTPS | None = None,
    ) -> None:
        if not IReactorPluggableNameResolver.providedBy(reactor):
            raise TypeError("the outbound client needs a reactor with a pluggable resolver")
        self._reactor = reactor
        self._resolver: IHostnameResolver = cast(
            IReactorPluggableNameResolver, reactor
        ).nameResolver
        self._policy = AddressPolicy(ip_blacklist, ip_whitelist)
        self._user_agent = user_agent
        self._pool = HTTPConnectionPool(reactor, persistent=True)  # type: ignore[no-untyped-call]
        self._pool.maxPersistentPerHost = MAX_PERSISTENT_PER_HOST
        self._pool.cachedConnectionTimeout = CACHED_CONNECTION_SECONDS
        # Certificates are checked as a browser would (the platform's trust roots and
        # the URL's host name) unless the caller brings its own policy (federation's
        # `.well-known` lookups use the federation trust settings): one policy for
        # every request, since building one loads the trust store.
        self._tls_policy: IPolicyForHTTPS = (
            tls_policy if tls_policy is not None else BrowserLikePolicyForHTTPS()  # type: ignore[no-untyped-call]
        )

    async def get(
        self,
        url: str,
        *,
        max_size: int,
        # A Twisted coroutine: asyncio.timeout (what ASYNC109 suggests) does not apply.
        timeout: float,  # noqa: ASYNC109
        headers: Mapping[str, str] | None = None,
        max_redirects: int = 5,
        check_url: Callable[[str], None] | None = None,
    ) -> OutboundResponse:
        """GET ``url``, following up to ``max_redirects`` redirects.

        Any status is returned (the caller decides what a 404 means); the errors are
        the ``Outbound*`` exceptions above.  ``check_url``, if given, is called with
        ``url`` and every redirect target before it is requested, and refuses it by
        raising (its exception propagates): the caller's own rules about URLs apply to
        where a redirect leads too.  Cancelling the call raises ``CancelledError``.
        """
        return await self.get_streamed(
            url,
            read_body=lambda response: read_capped_body(response, max_size),
            timeout=timeout,
            headers=headers,
            max_redirects=max_redirects,
            check_url=check_url,
        )

    async def get_streamed(
        self,
        url: str,
        *,
        read_body: BodyReader,
        timeout: float,  # noqa: ASYNC109 (a Twisted coroutine, as in get)
        headers: Mapping[str, str] | None = None,
        max_redirects: int = 5,
        check_url: Callable[[str], None] | None = None,
    ) -> OutboundResponse:
        """:meth:`get` (the same address policy, redirects, ``check_url`` and
        overall ``timeout``), except that the final response's body is read by
        ``read_body``, not into memory: a large file goes to disk as it arrives
        (:func:`stream_body`, which bounds it by the caller's ``max_size``).  The
        reader runs within ``timeout`` and is cancelled with the call (which drops
        the connection); what it raises propagates.  What it returns is the
        response's ``body``."""
        request_headers = Headers(
            {
                b"User-Agent": [self._user_agent.encode("utf-8")],
                # No compression: the size cap must apply to what is actually stored.
                b"Accept-Encoding": [b"identity"],
            }
        )
        for name, value in (headers or {}).items():
            request_headers.setRawHeaders(name.encode("latin-1"), [value.encode("latin-1")])

        exchange = defer.ensureDeferred(
            self._follow(url, request_headers, read_body, max_redirects, check_url)
        )
        # Cancelling the exchange surfaces as whatever the step in progress makes of it
        # (a CancelledError, a connection error), so who cancelled is noted: the timer
        # (OutboundTimeout) or our caller (CancelledError, never mistaken for a failure
        # of the site: a caller may cache failures).
        return await self._with_timeout(exchange, timeout)

    def whitelisted(self, host: str) -> bool:
        """``host`` is an IP address in ``ip_whitelist``: a place the operator chose to
        reach, where callers may relax their own rules (plain http for Web Push)."""
        return self._policy.whitelisted(host)

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        content_type: str,
        max_size: int,
        timeout: float,  # noqa: ASYNC109 (a Twisted coroutine, as in get)
        headers: Mapping[str, str] | None = None,
    ) -> OutboundResponse:
        """POST ``body`` to ``url`` under the same address policy, response size cap
        and overall timeout as :meth:`get`.  Redirects are *not* followed: a 3xx is
        returned as it is (a pusher's gateway that moves must be set again), so a POST
        is never replayed to a place nobody chose."""
        request_headers = Headers(
            {
                b"User-Agent": [self._user_agent.encode("utf-8")],
                b"Accept-Encoding": [b"identity"],
                b"Content-Type": [content_type.encode("latin-1")],
            }
        )
        for name, value in (headers or {}).items():
            request_headers.setRawHeaders(name.encode("latin-1"), [value.encode("latin-1")])

        async def exchange() -> OutboundResponse:
            response = await self._request(url, request_headers, b"POST", body)
            data = await read_capped_body(response, max_size)
            return OutboundResponse(
                code=response.code, headers=_flat_headers(response.headers), body=data, url=url
            )

        return await self._with_timeout(defer.ensureDeferred(exchange()), timeout)

    async def post_json(
        self,
        url: str,
        body: Any,
        *,
        max_size: int,
        timeout: float,  # noqa: ASYNC109 (a Twisted coroutine, as in get)
        headers: Mapping[str, str] | None = None,
    ) -> OutboundResponse:
        """POST ``body`` encoded as JSON (see :meth:`post`)."""
        encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return await self.post(
            url,
            encoded,
            content_type="application/json",
            max_size=max_size,
            timeout=timeout,
            headers=headers,
        )

    async def _with_timeout(
        self,
        exchange: defer.Deferred[OutboundResponse],
        timeout: float,  # noqa: ASYNC109 (a Twisted coroutine, as in get)
    ) -> OutboundResponse:
        stopped_by: list[str] = []

        def cancel(_: defer.Deferred[OutboundResponse]) -> None:
            stopped_by.append("caller")
            exchange.cancel()

        waiter: defer.Deferred[OutboundResponse] = defer.Deferred(cancel)
        exchange.chainDeferred(waiter)

        def expire() -> None:
            stopped_by.append("timeout")
            exchange.cancel()

        timer = self._reactor.callLater(timeout, expire)
        try:
            return await waiter
        except Exception as error:
            if stopped_by and stopped_by[0] == "timeout":
                raise OutboundTimeout(f"no complete response within {timeout} seconds") from error
            if stopped_by:
                raise defer.CancelledError() from error
            raise
        finally:
            if timer.active():
                timer.cancel()

    async def close(self) -> None:
        """Close the idle keep-alive connections (at shutdown, and in tests)."""
        await self._pool.closeCachedConnections()  # type: ignore[no-untyped-call]

    async def _follow(
        self,
        url: str,
        headers: Headers,
        read_body: BodyReader,
        max_redirects: int,
        check_url: Callable[[str], None] | None,
    ) -> OutboundResponse:
        current = url
        for _hop in range(max_redirects + 1):
            if check_url is not None:
                check_url(current)
            response = await self._request(current, headers)
            locations = response.headers.getRawHeaders(b"location")
            if response.code in REDIRECT_CODES and locations:
                drop_body(response)
                # Each hop is a new request: its host is resolved (and filtered) anew.
                current = urljoin(current, _decode_location(locations[0]).strip())
                continue
            body = await read_body(response)
            return OutboundResponse(
                code=response.code, headers=_flat_headers(response.headers), body=body, url=current
            )
        raise OutboundError(f"more than {max_redirects} redirects")

    async def _request(
        self, url: str, headers: Headers, method: bytes = b"GET", body: bytes | None = None
    ) -> IResponse:
        target = _request_target(url)
        # A resolver (and so an Agent) per request, so that its record of refused
        # addresses belongs to this request alone; the pool is shared.
        resolver = FilteringResolver(self._resolver, self._policy)
        agent = Agent(  # type: ignore[no-untyped-call]
            FilteringReactor(self._reactor, resolver),
            contextFactory=self._tls_policy,
            pool=self._pool,
        )
        try:
            producer = None if body is None else BytesProducer(body)
            response: IResponse = await agent.request(method, target, headers, producer)
        except defer.CancelledError:
            raise
        except DNSLookupError as error:
            if resolver.refused:
                raise OutboundRefused(
                    f"{urlsplit(url).hostname} resolves only to blocked addresses"
                    f" ({', '.join(resolver.refused)})",
                    blocked_addresses=resolver.refused,
                ) from error
            raise OutboundError(str(error)) from error
        except Exception as error:
            raise OutboundError(f"request failed: {describe_failure(error)}") from error
        return response


@implementer(IBodyProducer)
class BytesProducer:
    """A request body already in memory (a push payload, a federation transaction)."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: IConsumer) -> defer.Deferred[None]:
        consumer.write(self._body)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def describe_failure(error: Exception) -> str:
    # ResponseFailed and friends carry a list of Failures as their only argument.
    reasons = getattr(error, "reasons", None)
    if reasons:
        return "; ".join(str(reason.value) for reason in reasons)
    return str(error) or type(error).__name__
