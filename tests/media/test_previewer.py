"""URL previews end to end: real pages over real HTTP, a real database (both engines).

The one stand-in is the image sink, the media handler's side of the boundary: a small
class that reads the image with Pillow, records what it was given and answers an mxc
URI.  Time is a ``task.Clock`` so cache lifetimes can be stepped over; the network runs
on the real reactor.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import pytest_twisted
from PIL import Image
from twisted.internet import defer, task

from homeserver.clock import Clock
from homeserver.config.media import UrlPreviewConfig
from homeserver.errors import MatrixError
from homeserver.http.outbound import OutboundHttpClient
from homeserver.media.preview.opengraph import parse_html_preview
from homeserver.media.preview.previewer import (
    ERROR_CACHE_MS,
    PreviewImage,
    UrlBlacklist,
    UrlPreviewer,
)
from homeserver.media.threads import MediaThreads
from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from homeserver.storage.url_previews import UrlPreviewStore
from tests.media.test_outbound import (
    DEFAULT_BLACKLIST,
    LOOPBACK_ONLY,
    PNG,
    SiteRecord,
    deferred_sleep,
    make_client,
    serve_test_site,
)

LIFETIME_MS = 60_000


class RecordingSink:
    """Accepts what Pillow can read, as the media handler would, and records it."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str, str]] = []

    async def store_preview_image(
        self, body: bytes, content_type: str, url: str
    ) -> PreviewImage | None:
        self.received.append((body, content_type, url))
        try:
            with Image.open(io.BytesIO(body)) as image:
                width, height = image.size
        except Exception:
            return None
        return PreviewImage(
            mxc=f"mxc://test/image{len(self.received)}",
            width=width,
            height=height,
            size=len(body),
            mimetype=content_type,
        )

    @property
    def urls(self) -> list[str]:
        return [url for _, _, url in self.received]


@attrs.define
class Setup:
    site: SiteRecord
    db: Database
    sink: RecordingSink
    clock: task.Clock
    threads: MediaThreads
    clients: list[OutboundHttpClient] = attrs.Factory(list)

    def previewer(self, *, threaded: bool = True, **config: Any) -> UrlPreviewer:
        settings: dict[str, Any] = {
            "enabled": True,
            "ip_range_blacklist": DEFAULT_BLACKLIST,
            "ip_range_whitelist": LOOPBACK_ONLY,
            "accept_language": ("fr", "en;q=0.5"),
            "max_spider_size": 1_000_000,
            "timeout_ms": 5_000,
            "cache_lifetime_ms": LIFETIME_MS,
            **config,
        }
        preview_config = UrlPreviewConfig(**settings)
        client = make_client(
            whitelist=preview_config.ip_range_whitelist,
            blacklist=preview_config.ip_range_blacklist,
        )
        self.clients.append(client)
        return UrlPreviewer(
            client,
            UrlPreviewStore(self.db),
            Clock(self.clock),
            preview_config,
            self.sink,
            threads=self.threads if threaded else None,
        )


@pytest.fixture(scope="session")
def media_threads() -> MediaThreads:
    # One pool for the session, stopped with the reactor (MediaThreads registers that).
    return MediaThreads(installed_reactor())


@pytest_twisted.async_yield_fixture
async def setup(db: Database, media_threads: MediaThreads) -> AsyncIterator[Setup]:
    record, port = await serve_test_site()
    clock = task.Clock()
    clock.advance(1_700_000_000)
    state = Setup(site=record, db=db, sink=RecordingSink(), clock=clock, threads=media_threads)
    yield state
    for client in state.clients:
        await client.close()
    await defer.maybeDeferred(port.stopListening)


async def preview_error(previewer: UrlPreviewer, url: str) -> MatrixError:
    with pytest.raises(MatrixError) as raised:
        await previewer.preview(url)
    return raised.value


@pytest.mark.parametrize("threaded", [True, False], ids=["parsed-in-pool", "parsed-inline"])
@pytest_twisted.ensureDeferred
async def test_an_opengraph_page(setup: Setup, threaded: bool) -> None:
    base = setup.site.base
    preview = await setup.previewer(threaded=threaded).preview(f"{base}/og")
    assert preview == {
        "og:title": "The OG title",
        "og:description": "What the page is about.",
        "og:type": "article",
        "og:image": "mxc://test/image1",
        "og:image:type": "image/png",
        # The image's own size, not what the page claimed (9999).
        "og:image:width": 64,
        "og:image:height": 48,
        "matrix:image:size": len(PNG),
    }
    assert setup.sink.received == [(PNG, "image/png", f"{base}/image.png")]
    # Both fetches said which languages are preferred.
    assert setup.site.headers["/og"]["accept-language"] == "fr, en;q=0.5"
    assert setup.site.headers["/image.png"]["accept-language"] == "fr, en;q=0.5"


@pytest_twisted.ensureDeferred
async def test_a_page_without_opengraph_tags(setup: Setup) -> None:
    base = setup.site.base
    preview = await setup.previewer().preview(f"{base}/plain")
    assert preview["og:title"] == "Plain page"
    assert preview["og:description"] == "A page with no OpenGraph tags."
    assert preview["og:image"] == "mxc://test/image1"
    # Not the data: URI, not the 1x1 pixel: the first image of a real size.
    assert setup.sink.urls == [f"{base}/image.png"]


@pytest_twisted.ensureDeferred
async def test_a_relative_image_url_is_resolved_against_the_page(setup: Setup) -> None:
    base = setup.site.base
    preview = await setup.previewer().preview(f"{base}/dir/page.html")
    assert preview["og:title"] == "Relative"
    assert preview["og:image"] == "mxc://test/image1"
    assert setup.sink.urls == [f"{base}/dir/img/pic.png"]


@pytest_twisted.ensureDeferred
async def test_an_image_url(setup: Setup) -> None:
    base = setup.site.base
    preview = await setup.previewer().preview(f"{base}/image.png")
    assert preview == {
        "og:title": "image.png",
        "og:image": "mxc://test/image1",
        "og:image:type": "image/png",
        "og:image:width": 64,
        "og:image:height": 48,
        "matrix:image:size": len(PNG),
    }


@pytest_twisted.ensureDeferred
async def test_an_image_the_sink_refuses_leaves_the_title(setup: Setup) -> None:
    preview = await setup.previewer().preview(f"{setup.site.base}/pixel.gif")
    assert preview == {"og:title": "pixel.gif"}


@pytest_twisted.ensureDeferred
async def test_other_files_are_previewed_by_name(setup: Setup) -> None:
    previewer = setup.previewer()
    base = setup.site.base
    assert await previewer.preview(f"{base}/report.pdf") == {"og:title": "report.pdf"}
    assert await previewer.preview(f"{base}/download") == {"og:title": "report 2024.pdf"}
    assert setup.sink.received == []


@pytest_twisted.ensureDeferred
async def test_an_unlabelled_page_is_sniffed_as_html(setup: Setup) -> None:
    preview = await setup.previewer().preview(f"{setup.site.base}/no-type")
    assert preview == {"og:title": "Unlabelled"}


@pytest_twisted.ensureDeferred
async def test_redirects_are_followed(setup: Setup) -> None:
    preview = await setup.previewer().preview(f"{setup.site.base}/redirect/2")
    assert preview["og:title"] == "The OG title"
    assert setup.site.paths[:4] == ["/redirect/2", "/redirect/1", "/redirect/0", "/og"]


@pytest_twisted.ensureDeferred
async def test_loopback_is_refused_by_default(setup: Setup) -> None:
    previewer = setup.previewer(ip_range_whitelist=())
    for url in (f"{setup.site.base}/og", f"http://localhost:{setup.site.port}/og"):
        error = await preview_error(previewer, url)
        assert (error.status, error.errcode, error.message) == (
            403,
            "M_FORBIDDEN",
            "IP address blocked",
        )
    assert setup.site.paths == []


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_a_blocked_address_is_refused(setup: Setup) -> None:
    url = f"{setup.site.base}/redirect-to?url=http://127.0.0.2:{setup.site.port}/og"
    error = await preview_error(setup.previewer(), url)
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_a_page_too_large(setup: Setup) -> None:
    error = await preview_error(
        setup.previewer(max_spider_size=100_000), f"{setup.site.base}/endless"
    )
    assert (error.status, error.errcode) == (502, "M_TOO_LARGE")


@pytest_twisted.ensureDeferred
async def test_a_slow_page_times_out(setup: Setup) -> None:
    error = await preview_error(setup.previewer(timeout_ms=300), f"{setup.site.base}/slow")
    assert (error.status, error.errcode) == (504, "M_UNKNOWN")


@pytest_twisted.ensureDeferred
async def test_an_error_status_is_a_bad_gateway(setup: Setup) -> None:
    error = await preview_error(setup.previewer(), f"{setup.site.base}/missing")
    assert (error.status, error.errcode) == (502, "M_UNKNOWN")


@pytest_twisted.ensureDeferred
async def test_an_unreachable_host_is_a_bad_gateway(setup: Setup) -> None:
    error = await preview_error(setup.previewer(), "http://no-such-host.invalid/")
    assert (error.status, error.errcode) == (502, "M_UNKNOWN")


@pytest_twisted.ensureDeferred
async def test_previews_are_cached_for_their_lifetime(setup: Setup) -> None:
    previewer = setup.previewer()
    url = f"{setup.site.base}/og"
    first = await previewer.preview(url)
    assert await previewer.preview(url) == first
    # A new previewer (another process, a restart) reads the same stored preview.
    assert await setup.previewer().preview(url) == first
    assert setup.site.paths.count("/og") == 1
    setup.clock.advance(LIFETIME_MS / 1000)
    assert await previewer.preview(url) == {**first, "og:image": "mxc://test/image2"}
    assert setup.site.paths.count("/og") == 2


@pytest_twisted.ensureDeferred
async def test_failures_are_cached_briefly(setup: Setup) -> None:
    previewer = setup.previewer()
    url = f"{setup.site.base}/missing"
    first = await preview_error(previewer, url)
    second = await preview_error(previewer, url)
    assert (second.status, second.errcode, second.message) == (
        first.status,
        first.errcode,
        first.message,
    )
    assert setup.site.paths == ["/missing"]
    setup.clock.advance(ERROR_CACHE_MS / 1000)
    await preview_error(previewer, url)
    assert setup.site.paths == ["/missing", "/missing"]


@pytest_twisted.ensureDeferred
async def test_concurrent_previews_of_one_url_share_a_fetch(setup: Setup) -> None:
    previewer = setup.previewer()
    url = f"{setup.site.base}/delayed"
    first = defer.ensureDeferred(previewer.preview(url))
    second = defer.ensureDeferred(previewer.preview(url))
    assert await first == await second
    assert setup.site.paths.count("/delayed") == 1


@pytest_twisted.ensureDeferred
async def test_a_preview_abandoned_by_its_caller_is_not_cached(setup: Setup) -> None:
    previewer = setup.previewer()
    url = f"{setup.site.base}/slow"
    call = defer.ensureDeferred(previewer.preview(url))
    await deferred_sleep(0.1)
    call.cancel()
    with pytest.raises(defer.CancelledError):
        await call
    assert await UrlPreviewStore(setup.db).get(url, 0) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/file",
        "javascript:alert(1)",
        "example.org/page",
        "http:///no-host",
        "http://exa mple.org/",
        "http://example.org:99999/",
        "http://example.org/\x00",
        "https://example.org/" + "a" * 5000,
    ],
)
@pytest_twisted.ensureDeferred
async def test_invalid_urls(setup: Setup, url: str) -> None:
    error = await preview_error(setup.previewer(), url)
    assert (error.status, error.errcode) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_the_url_blacklist(setup: Setup) -> None:
    base = setup.site.base
    previewer = setup.previewer(
        url_blacklist=({"path": "/og"}, {"netloc": "*.blocked.example"}),
    )
    error = await preview_error(previewer, f"{base}/og")
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")
    assert setup.site.paths == []
    # Where a redirect leads is checked too.
    error = await preview_error(previewer, f"{base}/redirect/0")
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN")
    assert setup.site.paths == ["/redirect/0"]


@pytest_twisted.ensureDeferred
async def test_a_page_image_that_cannot_be_had_is_left_out(setup: Setup) -> None:
    base, port = setup.site.base, setup.site.port
    previewer = setup.previewer(
        max_spider_size=200_000, url_blacklist=({"path": "/blacklisted.png"},)
    )
    for image in (
        f"http://127.0.0.2:{port}/image.png",  # a blocked address
        f"{base}/endless?type=image/png",  # too large
        f"{base}/missing",  # 404
        f"{base}/og",  # not an image
        f"{base}/blacklisted.png",  # url_preview_url_blacklist
        "data:image/png;base64,iVBORw0KGgo=",  # not fetched at all
    ):
        preview = await previewer.preview(f"{base}/with-image?image={image}")
        assert preview == {
            "og:title": "The OG title",
            "og:description": "What the page is about.",
            "og:type": "article",
        }, image
    assert setup.sink.received == []
    assert "/blacklisted.png" not in setup.site.paths


def test_url_blacklist_semantics() -> None:
    blacklist = UrlBlacklist(
        (
            {"username": "*"},
            {"netloc": "google.com"},
            {"netloc": "*.google.com"},
            {"netloc": "www.acme.com", "path": "/foo"},
            {"netloc": r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$"},
            {"scheme": "http", "query": "*secret=*"},
        )
    )
    assert blacklist.blocks("https://user@example.org/")
    assert not blacklist.blocks("https://example.org/")  # no username: never matches
    assert blacklist.blocks("https://google.com/search")
    assert blacklist.blocks("https://maps.GOOGLE.com/")  # hosts are case-insensitive
    assert not blacklist.blocks("https://notgoogle.com/")
    assert blacklist.blocks("https://www.acme.com/foo")
    assert not blacklist.blocks("https://www.acme.com/bar")  # every part must match
    assert blacklist.blocks("https://192.168.1.1/")
    assert not blacklist.blocks("https://192.168.1.1:8080/")  # netloc includes the port
    assert blacklist.blocks("http://example.org/?a=1&secret=2")
    assert not blacklist.blocks("https://example.org/?a=1&secret=2")
    assert not UrlBlacklist(()).blocks("https://anything.example/")
    with pytest.raises(ValueError):
        UrlBlacklist(({"host": "example.org"},))
    with pytest.raises(ValueError):
        UrlBlacklist(({"path": "^(unclosed"},))


def parse(body: bytes | str, content_type: str | None = None) -> dict[str, Any]:
    data = body.encode() if isinstance(body, str) else body
    return parse_html_preview(
        data, url="https://site.example/a/page", content_type_header=content_type
    )


def test_parsing_the_charset() -> None:
    title = "<title>Café ünïcode</title>"
    # The header wins over a <meta>, which wins over the UTF-8 default.
    assert parse(title.encode("latin-1"), "text/html; charset=ISO-8859-1") == {
        "og:title": "Café ünïcode"
    }
    latin_meta = b'<meta charset="iso-8859-1">' + title.encode("latin-1")
    assert parse(latin_meta)["og:title"] == "Café ünïcode"
    assert (
        parse(latin_meta, "text/html; charset=utf-8")["og:title"] == "Caf\ufffd \ufffdn\ufffdcode"
    )
    http_equiv = (
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
        "<title>Привет</title>"
    )
    assert parse(http_equiv.encode("cp1251"))["og:title"] == "Привет"
    assert parse("\ufeff<title>BOM</title>".encode("utf-16"))["og:title"] == "BOM"
    # Unknown or non-text codecs fall back to UTF-8.
    assert parse(title.encode(), "text/html; charset=base64")["og:title"] == "Café ünïcode"
    assert parse(b'<meta charset="no-such-charset">' + title.encode())["og:title"] == "Café ünïcode"


def test_parsing_opengraph_and_fallbacks() -> None:
    page = """<html><head>
      <meta name="og:title" content="By name">
      <meta property="OG:Description" content="  spread
          over lines  ">
      <meta property="og:url" content="/canonical">
      <meta property="og:video" content="javascript:alert(1)">
      <meta name="twitter:image" content="//cdn.example/card.jpg">
      <meta name="twitter:title" content="Twitter title">
    </head></html>"""
    assert parse(page) == {
        "og:title": "By name",
        "og:description": "spread over lines",
        "og:url": "https://site.example/canonical",
        "og:image": "https://cdn.example/card.jpg",
    }
    # Twitter's title is a fallback after the page's own <title>.
    assert parse('<title>Own</title><meta name="twitter:title" content="T">') == {"og:title": "Own"}


def test_parsing_the_first_paragraph_and_image() -> None:
    page = """<body>
      <script>var p = "<p>not text</p>";</script>
      <svg><title>an icon</title></svg>
      <img src="spacer.gif" width="1" height="1"><img src="icon.png" width="16px">
      <img src="photo.jpg" width="640">
      <p>   </p>
      <p>The first <b>real</b> paragraph,
         on two lines.<div>not in it</div>
      <p>The second.</p>"""
    assert parse(page) == {
        "og:description": "The first real paragraph, on two lines.",
        "og:image": "https://site.example/a/photo.jpg",
    }
    long_paragraph = "<p>" + "word " * 400 + "</p>"
    description = parse(long_paragraph)["og:description"]
    assert 400 <= len(description) <= 500
    assert description.endswith("word…")


def test_parsing_caps_what_a_page_can_put_in_a_preview() -> None:
    flood = "".join(f'<meta property="og:k{i}" content="{i}">' for i in range(500))
    assert len(parse(flood)) == 64
    long_key = f'<meta property="og:{"k" * 100}" content="v">'
    assert parse(long_key) == {}
    long_title = parse(f'<meta property="og:title" content="{"x" * 5000}">')["og:title"]
    assert len(long_title) <= 1000
    long_url = parse(f'<meta property="og:image" content="/{"x" * 5000}.png">')
    assert long_url == {}  # a cut URL is no URL
    assert parse('<img src="data:image/png;base64,AAAA">') == {}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        b"<" * 3_000_000,
        b"<div " + b"a=1 " * 2_000_000,
        b"<!--" + b"a" * 5_000_000,
        b"<p><b>" * 1_000_000,
        b"</p></p></title></head></svg>" * 1000,
        b"<![CDATA[" + b"]" * 100_000,
    ],
    ids=["empty", "binary", "lt", "unclosed-tag", "comment", "nested", "stray-ends", "cdata"],
)
def test_parsing_garbage_is_quick_and_never_raises(body: bytes) -> None:
    started = time.monotonic()
    preview = parse(body)
    assert time.monotonic() - started < 2
    assert all(isinstance(value, str) and "<" not in value for value in preview.values())
