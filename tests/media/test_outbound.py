"""The outbound HTTP client against a real HTTP server on 127.0.0.1.

Loopback is in the default blacklist, so the same server is reachable or not
depending on the client's whitelist: that is how refusal is tested, through real
name resolution and real connections.  :func:`serve_test_site` is shared with the
previewer's tests.
"""

from __future__ import annotations

import io
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import pytest
import pytest_twisted
from PIL import Image
from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IAddress,
    IHostResolution,
    IPullProducer,
    IResolutionReceiver,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer

from homeserver.config.media import DEFAULT_PREVIEW_IP_BLACKLIST
from homeserver.http.outbound import (
    AddressPolicy,
    FilteringResolver,
    IpNetwork,
    OutboundError,
    OutboundHttpClient,
    OutboundRefused,
    OutboundTimeout,
    OutboundTooLarge,
)
from homeserver.reactor import installed_reactor

DEFAULT_BLACKLIST: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(network) for network in DEFAULT_PREVIEW_IP_BLACKLIST
)
LOOPBACK_ONLY: tuple[IpNetwork, ...] = (ipaddress.ip_network("127.0.0.1/32"),)
ENDLESS_CHUNK = b"x" * 65536


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 60)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png()


def og_page(image: str = "/image.png") -> bytes:
    return f"""<!DOCTYPE html>
<html><head>
<meta charset="utf-8">
<title>Not the OG title</title>
<meta property="og:title" content="  The OG title ">
<meta property="og:description" content="What the page is about.">
<meta property="og:image" content="{image}">
<meta property="og:image:width" content="9999">
<meta property="og:type" content="article">
</head><body><p>Body text.</p></body></html>""".encode()


PLAIN_PAGE = b"""<html><head><title>
  Plain page </title>
<meta name="description" content="A page with no OpenGraph tags.">
</head><body>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<img src="/pixel.gif" width="1" height="1">
<img src="/image.png" width="200" height="100">
<p>First paragraph.</p>
</body></html>"""

RELATIVE_PAGE = b"""<html><head><title>Relative</title>
<meta property="og:image" content="img/pic.png"></head><body></body></html>"""


@attrs.define
class SiteRecord:
    """What the test site saw."""

    base: str = ""
    port: int = 0
    paths: list[str] = attrs.Factory(list)
    headers: dict[str, dict[str, str]] = attrs.Factory(dict)
    endless_sent: int = 0
    endless_closed: defer.Deferred[None] = attrs.Factory(defer.Deferred)


@implementer(IPullProducer)
class _Endless:
    """Writes a body that never ends, a chunk each time the socket has room."""

    def __init__(self, request: Any, record: SiteRecord) -> None:
        self._request = request
        self._record = record
        self._stopped = False

    def resumeProducing(self) -> None:
        if not self._stopped:
            self._request.write(ENDLESS_CHUNK)
            self._record.endless_sent += len(ENDLESS_CHUNK)

    def stopProducing(self) -> None:
        self._stopped = True

    def stop(self, _: object) -> None:
        self._stopped = True
        if not self._record.endless_closed.called:
            self._record.endless_closed.callback(None)


class _TestSite(Resource):
    """The pages the tests fetch (``request`` is twisted.web's ``Request``, typed
    ``Any``: its methods have no annotations, so strict mypy refuses calls to them)."""

    isLeaf = True

    def __init__(self, record: SiteRecord) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._record = record

    def render_GET(self, request: Any) -> bytes | int:
        path = request.path.decode()
        self._record.paths.append(path)
        self._record.headers[path] = {
            name.decode().lower(): b", ".join(values).decode()
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        query = {key.decode(): values[0].decode() for key, values in request.args.items()}
        if path.startswith("/redirect/"):
            left = int(path.rsplit("/", 1)[1])
            return self._redirect(request, f"/redirect/{left - 1}" if left else "/og")
        name = "page_" + "".join(c if c.isalnum() else "_" for c in path.strip("/"))
        handler = getattr(self, name, None)
        if handler is None:
            request.setResponseCode(404)
            return b"not here"
        result: bytes | int = handler(request, query)
        return result

    def _redirect(self, request: Any, location: str) -> bytes:
        request.setResponseCode(302)
        request.setHeader(b"Location", location.encode())
        return b"moved"

    def _send(self, request: Any, content_type: str, body: bytes) -> bytes:
        request.setHeader(b"Content-Type", content_type.encode())
        return body

    def page_og(self, request: Any, query: dict[str, str]) -> bytes:
        return self._send(request, "text/html; charset=utf-8", og_page())

    def page_plain(self, request: Any, query: dict[str, str]) -> bytes:
        return self._send(request, "text/html", PLAIN_PAGE)

    def page_dir_page_html(self, request: Any, query: dict[str, str]) -> bytes:
        return self._send(request, "text/html", RELATIVE_PAGE)

    def page_image_png(self, request: Any, query: dict[str, str]) -> bytes:
        return self._send(request, "image/png", PNG)

    page_dir_img_pic_png = page_image_png

    def page_pixel_gif(self, request: Any, query: dict[str, str]) -> bytes:
        return self._send(request, "image/gif", b"GIF89a")

    def page_with_image(self, request: Any, query: dict[str, str]) -> bytes:
        """An OpenGraph page whose image is at ``?image=``."""
        return self._send(request, "text/html", og_page(query["image"]))

    def page_redirect_to(self, request: Any, query: dict[str, str]) -> bytes:
        return self._redirect(request, query["url"])

    def page_endless(self, request: Any, query: dict[str, str]) -> int:
        request.setHeader(b"Content-Type", query.get("type", "text/html").encode())
        producer = _Endless(request, self._record)
        request.notifyFinish().addBoth(producer.stop)
        request.registerProducer(producer, False)
        return NOT_DONE_YET

    def page_declared_huge(self, request: Any, query: dict[str, str]) -> int:
        # Says a gigabyte follows, sends a little, then waits: the client must not.
        request.setHeader(b"Content-Type", b"text/html")
        request.setHeader(b"Content-Length", b"1000000000")
        request.write(b"<html>" * 100)
        request.notifyFinish().addErrback(lambda _: None)
        return NOT_DONE_YET

    def page_slow(self, request: Any, query: dict[str, str]) -> int:
        request.notifyFinish().addErrback(lambda _: None)
        return NOT_DONE_YET

    def page_delayed(self, request: Any, query: dict[str, str]) -> int:
        """The OpenGraph page, after a pause (concurrent previews arrive meanwhile)."""
        request.notifyFinish().addErrback(lambda _: None)

        def answer() -> None:
            request.setHeader(b"Content-Type", b"text/html")
            request.write(og_page())
            request.finish()

        installed_reactor().callLater(0.3, answer)
        return NOT_DONE_YET

    def page_echo(self, request: Any, query: dict[str, str]) -> bytes:
        headers = self._record.headers[request.path.decode()]
        return self._send(request, "application/json", json.dumps(headers).encode())

    def page_missing(self, request: Any, query: dict[str, str]) -> bytes:
        request.setResponseCode(404)
        return self._send(request, "text/html", b"<title>Gone</title>")

    def page_report_pdf(self, request: Any, query: dict[str, str]) -> bytes:
        return self._send(request, "application/pdf", b"%PDF-1.4 not really")

    def page_download(self, request: Any, query: dict[str, str]) -> bytes:
        request.setHeader(b"Content-Disposition", b'attachment; filename="report 2024.pdf"')
        return self._send(request, "application/octet-stream", b"data")

    def page_no_type(self, request: Any, query: dict[str, str]) -> bytes:
        # twisted.web would label the page text/html; this one says nothing.
        request.defaultContentType = None
        return b"<!doctype html><title>Unlabelled</title>"


async def serve_test_site() -> tuple[SiteRecord, Any]:
    """Start the test site on 127.0.0.1; the record and the listening port."""
    record = SiteRecord()
    reactor = installed_reactor()
    # Twisted's ServerFactory is invariant in its protocol type, so listenTCP's
    # ServerFactory[_ProtoWithFactory] admits no Site.
    site: Any = Site(_TestSite(record))  # type: ignore[no-untyped-call]
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    address = port.getHost()
    assert isinstance(address, IPv4Address)
    record.port = address.port
    record.base = f"http://127.0.0.1:{address.port}"
    return record, port


def make_client(
    whitelist: Sequence[IpNetwork] = (), blacklist: Sequence[IpNetwork] = DEFAULT_BLACKLIST
) -> OutboundHttpClient:
    return OutboundHttpClient(
        installed_reactor(),
        ip_blacklist=blacklist,
        ip_whitelist=whitelist,
        user_agent="TestAgent/1.0",
    )


@pytest_twisted.async_yield_fixture
async def site() -> AsyncIterator[SiteRecord]:
    record, port = await serve_test_site()
    yield record
    await defer.maybeDeferred(port.stopListening)


@pytest_twisted.async_yield_fixture
async def allowed() -> AsyncIterator[OutboundHttpClient]:
    """Default blacklist, 127.0.0.1 whitelisted: the test site is reachable."""
    client = make_client(whitelist=LOOPBACK_ONLY)
    yield client
    await client.close()


@pytest_twisted.async_yield_fixture
async def blocked() -> AsyncIterator[OutboundHttpClient]:
    """The default blacklist alone: the test site is not."""
    client = make_client()
    yield client
    await client.close()


async def fetch_error(
    client: OutboundHttpClient, url: str, *, max_size: int = 1_000_000, time_limit: float = 5.0
) -> OutboundError:
    with pytest.raises(OutboundError) as raised:
        await client.get(url, max_size=max_size, timeout=time_limit)
    return raised.value


@pytest_twisted.ensureDeferred
async def test_a_whitelisted_address_is_fetched(
    site: SiteRecord, allowed: OutboundHttpClient
) -> None:
    response = await allowed.get(f"{site.base}/og", max_size=100_000, timeout=5)
    assert response.code == 200
    assert response.body == og_page()
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.url == f"{site.base}/og"


@pytest_twisted.ensureDeferred
async def test_with_an_empty_blacklist_loopback_is_fetched(site: SiteRecord) -> None:
    client = make_client(blacklist=())
    try:
        response = await client.get(f"{site.base}/image.png", max_size=100_000, timeout=5)
    finally:
        await client.close()
    assert (response.code, response.body) == (200, PNG)


@pytest_twisted.ensureDeferred
async def test_a_blacklisted_ip_literal_is_refused_without_connecting(
    site: SiteRecord, blocked: OutboundHttpClient
) -> None:
    error = await fetch_error(blocked, f"{site.base}/og")
    assert isinstance(error, OutboundRefused)
    # Refused by the resolver (IP literals go through it too), not by a pre-check.
    assert error.blocked_addresses == ("127.0.0.1",)
    assert site.paths == []


@pytest_twisted.ensureDeferred
async def test_a_name_resolving_to_loopback_is_refused(
    site: SiteRecord, blocked: OutboundHttpClient
) -> None:
    error = await fetch_error(blocked, f"http://localhost:{site.port}/og")
    assert isinstance(error, OutboundRefused)
    assert "127.0.0.1" in error.blocked_addresses
    assert site.paths == []


@pytest_twisted.ensureDeferred
async def test_only_the_allowed_addresses_of_a_name_are_connected_to(
    site: SiteRecord, allowed: OutboundHttpClient
) -> None:
    # localhost may resolve to ::1 as well: blacklisted and not whitelisted, it is
    # dropped, and the connection goes to 127.0.0.1 (where the site listens).
    response = await allowed.get(f"http://localhost:{site.port}/og", max_size=100_000, timeout=5)
    assert response.code == 200
    assert site.paths == ["/og"]


@pytest_twisted.ensureDeferred
async def test_an_ipv4_mapped_ipv6_literal_is_judged_as_ipv4(
    site: SiteRecord, blocked: OutboundHttpClient
) -> None:
    # ::ffff:0:0/96 is in no list: only its IPv4 form (127.0.0.1) is blacklisted.
    error = await fetch_error(blocked, f"http://[::ffff:127.0.0.1]:{site.port}/og")
    assert isinstance(error, OutboundRefused)
    assert site.paths == []


@pytest_twisted.ensureDeferred
async def test_the_resolver_filters_ip_literals_too() -> None:
    """HostnameEndpoint hands IP literals to the resolver as well: the one check point."""
    reactor: Any = installed_reactor()
    resolver = FilteringResolver(
        reactor.nameResolver, AddressPolicy(DEFAULT_BLACKLIST, LOOPBACK_ONLY)
    )
    done: defer.Deferred[list[str]] = defer.Deferred()
    found: list[str] = []

    @implementer(IResolutionReceiver)
    class Receiver:
        def resolutionBegan(self, resolution: IHostResolution) -> None:
            pass

        def addressResolved(self, address: IAddress) -> None:
            assert isinstance(address, IPv4Address | IPv6Address)
            found.append(address.host)

        def resolutionComplete(self) -> None:
            done.callback(found)

    resolver.resolveHostName(Receiver(), "127.0.0.2", 80)
    assert await done == []
    assert resolver.refused == ["127.0.0.2"]
    done = defer.Deferred()
    resolver.resolveHostName(Receiver(), "127.0.0.1", 80)
    assert await done == ["127.0.0.1"]


def test_the_address_policy() -> None:
    policy = AddressPolicy(DEFAULT_BLACKLIST, LOOPBACK_ONLY)
    assert policy.allows("93.184.215.14")
    assert policy.allows("2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert policy.allows("127.0.0.1")  # whitelisted
    assert not policy.allows("127.0.0.2")
    assert not policy.allows("10.1.2.3")
    assert not policy.allows("::1")
    assert not policy.allows("fe80::1%eth0")
    assert not policy.allows("::ffff:10.1.2.3")
    assert policy.allows("::ffff:127.0.0.1")  # whitelisted as its IPv4 form
    assert not policy.allows("not an address")
    # A list may name the mapped form itself.
    mapped = AddressPolicy([ipaddress.ip_network("::ffff:0:0/96")], [])
    assert not mapped.allows("::ffff:8.8.8.8")
    assert AddressPolicy([], []).allows("127.0.0.1")


@pytest_twisted.ensureDeferred
async def test_redirects_are_followed(site: SiteRecord, allowed: OutboundHttpClient) -> None:
    response = await allowed.get(f"{site.base}/redirect/3", max_size=100_000, timeout=5)
    assert response.code == 200
    assert response.url == f"{site.base}/og"
    assert site.paths == ["/redirect/3", "/redirect/2", "/redirect/1", "/redirect/0", "/og"]


@pytest_twisted.ensureDeferred
async def test_too_many_redirects_fail(site: SiteRecord, allowed: OutboundHttpClient) -> None:
    with pytest.raises(OutboundError, match="redirects"):
        await allowed.get(f"{site.base}/redirect/3", max_size=100_000, timeout=5, max_redirects=2)
    assert len(site.paths) == 3


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_a_blacklisted_address_is_refused(
    site: SiteRecord, allowed: OutboundHttpClient
) -> None:
    # 127.0.0.2 is loopback too, but only 127.0.0.1 is whitelisted.
    url = f"{site.base}/redirect-to?url=http://127.0.0.2:{site.port}/og"
    error = await fetch_error(allowed, url)
    assert isinstance(error, OutboundRefused)
    assert site.paths == ["/redirect-to"]


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_another_scheme_is_refused(
    site: SiteRecord, allowed: OutboundHttpClient
) -> None:
    error = await fetch_error(allowed, f"{site.base}/redirect-to?url=file:///etc/passwd")
    assert isinstance(error, OutboundRefused)
    assert error.blocked_addresses == ()


@pytest_twisted.ensureDeferred
async def test_check_url_sees_every_hop_and_can_refuse(
    site: SiteRecord, allowed: OutboundHttpClient
) -> None:
    seen: list[str] = []

    def check(url: str) -> None:
        seen.append(url)
        if url.endswith("/og"):
            raise PermissionError(url)

    with pytest.raises(PermissionError):
        await allowed.get(f"{site.base}/redirect/1", max_size=1000, timeout=5, check_url=check)
    base = site.base
    assert seen == [f"{base}/redirect/1", f"{base}/redirect/0", f"{base}/og"]
    assert site.paths == ["/redirect/1", "/redirect/0"]


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://a/"])
@pytest_twisted.ensureDeferred
async def test_other_schemes_are_refused(url: str, allowed: OutboundHttpClient) -> None:
    assert isinstance(await fetch_error(allowed, url), OutboundRefused)


@pytest_twisted.ensureDeferred
async def test_an_endless_body_is_cut_off_at_max_size(
    site: SiteRecord, allowed: OutboundHttpClient
) -> None:
    started = time.monotonic()
    error = await fetch_error(allowed, f"{site.base}/endless", max_size=200_000)
    assert isinstance(error, OutboundTooLarge)
    assert time.monotonic() - started < 3
    # The client closed the connection: the server's writes stopped, after no more
    # than what the sockets' buffers held beyond the limit.
    await site.endless_closed
    assert site.endless_sent < 8_000_000


@pytest_twisted.ensureDeferred
async def test_a_declared_length_over_max_size_is_refused_up_front(
    site: SiteRecord, allowed: OutboundHttpClient
) -> None:
    started = time.monotonic()
    error = await fetch_error(allowed, f"{site.base}/declared-huge", max_size=1_000_000)
    assert isinstance(error, OutboundTooLarge)
    assert "Content-Length" in str(error)
    assert time.monotonic() - started < 3


@pytest_twisted.ensureDeferred
async def test_a_slow_server_times_out(site: SiteRecord, allowed: OutboundHttpClient) -> None:
    started = time.monotonic()
    error = await fetch_error(allowed, f"{site.base}/slow", time_limit=0.5)
    assert isinstance(error, OutboundTimeout)
    assert 0.4 < time.monotonic() - started < 3


@pytest_twisted.ensureDeferred
async def test_a_slow_body_times_out(site: SiteRecord, allowed: OutboundHttpClient) -> None:
    # Headers and some body arrive; the rest never does.
    error = await fetch_error(
        allowed, f"{site.base}/declared-huge", max_size=10**10, time_limit=0.5
    )
    assert isinstance(error, OutboundTimeout)


@pytest_twisted.ensureDeferred
async def test_cancelling_is_not_a_failure(site: SiteRecord, allowed: OutboundHttpClient) -> None:
    call = defer.ensureDeferred(allowed.get(f"{site.base}/slow", max_size=1000, timeout=5))
    await deferred_sleep(0.1)
    call.cancel()
    with pytest.raises(defer.CancelledError):
        await call


@pytest_twisted.ensureDeferred
async def test_headers_are_sent(site: SiteRecord, allowed: OutboundHttpClient) -> None:
    response = await allowed.get(
        f"{site.base}/echo", max_size=10_000, timeout=5, headers={"Accept-Language": "fr, en"}
    )
    sent = json.loads(response.body)
    assert sent["user-agent"] == "TestAgent/1.0"
    assert sent["accept-language"] == "fr, en"
    assert sent["accept-encoding"] == "identity"
    assert sent["host"] == f"127.0.0.1:{site.port}"


@pytest_twisted.ensureDeferred
async def test_error_statuses_are_returned(site: SiteRecord, allowed: OutboundHttpClient) -> None:
    response = await allowed.get(f"{site.base}/missing", max_size=10_000, timeout=5)
    assert (response.code, response.body) == (404, b"<title>Gone</title>")


@pytest_twisted.ensureDeferred
async def test_a_closed_port_is_an_error_not_a_refusal(allowed: OutboundHttpClient) -> None:
    record, port = await serve_test_site()
    await defer.maybeDeferred(port.stopListening)
    error = await fetch_error(allowed, f"{record.base}/og")
    assert type(error) is OutboundError


@pytest_twisted.ensureDeferred
async def test_an_unknown_name_is_an_error_not_a_refusal(allowed: OutboundHttpClient) -> None:
    # .invalid never resolves (RFC 6761).
    error = await fetch_error(allowed, "http://no-such-host.invalid/", time_limit=10)
    assert not isinstance(error, OutboundRefused)


async def deferred_sleep(seconds: float) -> None:
    waiter: defer.Deferred[None] = defer.Deferred()
    installed_reactor().callLater(seconds, waiter.callback, None)
    await waiter


class _HangUp(Protocol):
    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_https_goes_through_the_same_resolver(
    blocked: OutboundHttpClient, allowed: OutboundHttpClient
) -> None:
    factory: Any = Factory.forProtocol(_HangUp)
    port = installed_reactor().listenTCP(0, factory, interface="127.0.0.1")
    address = port.getHost()
    assert isinstance(address, IPv4Address)
    url = f"https://127.0.0.1:{address.port}/og"
    try:
        assert isinstance(await fetch_error(blocked, url), OutboundRefused)
        # Allowed, the connection is made; a server that hangs up during the TLS
        # handshake is a failure of the site, not a refusal.
        error = await fetch_error(allowed, url)
        assert type(error) is OutboundError
    finally:
        await defer.maybeDeferred(port.stopListening)
