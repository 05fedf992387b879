"""URL previews: fetch a page, read its OpenGraph data, keep its image as media.

spec: data/api/client-server/authed-content-repo.yaml, ``GET /media/preview_url``: the
answer is the page's OpenGraph data, "which may be empty", except that ``og:image`` is
an ``mxc://`` URI of the image (stored here as media) and ``matrix:image:size`` its size
in bytes; ``og:image:type``, ``og:image:width`` and ``og:image:height`` describe it.
The ``ts`` parameter is a preference the server may ignore ("may return a newer
version"): previews are cached for ``cache_lifetime_ms`` and the cached one is answered.

What a preview is made of, by what the URL serves:

* HTML: :func:`~homeserver.media.preview.opengraph.parse_html_preview`, then its
  ``og:image`` fetched and stored through the :class:`PreviewImageSink`.  An image that
  cannot be had (refused, too large, not an image) is left out; the rest stands.
* an image: the image itself (as above) and ``og:title``, its file name, which is what a
  client can show as the card's caption.
* anything else (a PDF, a video, JSON): just ``og:title``, the file name, since that is
  all a client can show without downloading it; ``{}`` when the URL names no file.

Errors are Matrix errors, chosen from the spec where it speaks and from Synapse's
documented behaviour otherwise:

* not an http(s) URL: 400 ``M_INVALID_PARAM``;
* refused by ``url_preview_url_blacklist`` (the URL, or a redirect target): 403
  ``M_FORBIDDEN``;
* the host resolves only to blocked addresses (``url_preview_ip_range_blacklist``), or a
  redirect leads to a scheme other than http(s): 403 ``M_FORBIDDEN``, as Synapse
  answers "IP address blocked";
* larger than ``max_spider_size``: 502 ``M_TOO_LARGE`` (the content repository
  module's answer for remote content that is too large);
* no answer within the timeout: 504 ``M_UNKNOWN``;
* anything else upstream (DNS failure, connection refused, a non-2xx status, a broken
  response): 502 ``M_UNKNOWN``.

Upstream failures (5xx) are cached too, for :data:`ERROR_CACHE_MS`, so a dead or
hostile link posted in a busy room is not fetched again for every client that sees
it; refusals by policy (403) are not, as they follow the config.
Concurrent requests for one URL share one fetch.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote, urlparse, urlsplit

import attrs
from twisted.internet import defer

from homeserver.clock import Clock
from homeserver.config.media import UrlPreviewConfig
from homeserver.errors import Codes, MatrixError, forbidden, invalid_param
from homeserver.http.outbound import (
    OutboundError,
    OutboundHttpClient,
    OutboundRefused,
    OutboundResponse,
    OutboundTimeout,
    OutboundTooLarge,
)
from homeserver.media.preview.opengraph import parse_html_preview
from homeserver.media.threads import MediaThreads
from homeserver.storage.url_previews import UrlPreviewStore
from homeserver.util.single_flight import SingleFlight

logger = logging.getLogger(__name__)

#: How long a failed preview is answered from the cache (never longer than a good one).
ERROR_CACHE_MS = 5 * 60 * 1000
#: Longest URL previewed: it is a database key, and no page worth previewing needs more.
MAX_URL_LENGTH = 4096
#: Longest file name used as a title.
MAX_FILE_NAME_CHARS = 255

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"
_IMAGE_ACCEPT = "image/*"
#: The ``og:image*`` keys a page may declare; replaced by what the stored image is.
_IMAGE_KEYS = (
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "og:image:type",
    "og:image:width",
    "og:image:height",
)
#: URL parts a ``url_preview_url_blacklist`` entry may name (``urllib.parse.urlparse``'s
#: attributes, as Synapse documents the option).
_URL_PARTS = frozenset(
    ("scheme", "netloc", "path", "params", "query", "fragment")
    + ("username", "password", "hostname", "port")
)
#: Parts compared case-insensitively: hosts and schemes are (RFC 3986 §3.1, §3.2.2), so
#: a blacklisted "*.example.com" must not be dodged by writing EXAMPLE.COM.
_CASELESS_PARTS = frozenset({"scheme", "netloc", "hostname"})
#: Never in a URL as a client sends it (RFC 3986 has no room for them unencoded).
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@attrs.frozen
class PreviewImage:
    """An image stored as media for a preview."""

    mxc: str
    width: int | None
    height: int | None
    size: int
    mimetype: str


class PreviewImageSink(Protocol):
    """Where preview images go (the media handler: it stores them as media)."""

    async def store_preview_image(
        self, body: bytes, content_type: str, url: str
    ) -> PreviewImage | None:
        """Store ``body`` (fetched from ``url``, served as ``content_type``); None if it
        is not an image the server accepts."""
        ...


class UrlBlacklist:
    """``url_preview_url_blacklist``: a URL matching every part named by any one entry
    is refused.  A pattern starting with ``^`` is a regular expression (matched at the
    start of the part), any other a glob; a part the URL lacks (no username, say) never
    matches, and an empty entry names nothing, so blocks nothing.  Entries naming parts
    ``urlparse`` does not have are a configuration error (``ValueError``)."""

    def __init__(self, entries: tuple[dict[str, str], ...]) -> None:
        self._entries: list[list[tuple[str, Callable[[str], bool]]]] = []
        for entry in entries:
            unknown = set(entry) - _URL_PARTS
            if unknown:
                raise ValueError(f"url_preview_url_blacklist: unknown URL parts {sorted(unknown)}")
            self._entries.append([(part, _matcher(part, entry[part])) for part in entry])

    def blocks(self, url: str) -> bool:
        try:
            parsed = urlparse(url)
            parts: dict[str, Any] = {part: getattr(parsed, part) for part in _URL_PARTS}
        except ValueError:
            return True  # A port out of range and the like: not a URL we would fetch.
        for entry in self._entries:
            if entry and all(
                parts[part] is not None and matches(str(parts[part])) for part, matches in entry
            ):
                return True
        return False


def _matcher(part: str, pattern: str) -> Callable[[str], bool]:
    caseless = part in _CASELESS_PARTS
    if pattern.startswith("^"):
        try:
            regex = re.compile(pattern, re.IGNORECASE if caseless else 0)
        except re.error as error:
            raise ValueError(
                f"url_preview_url_blacklist: bad pattern {pattern!r}: {error}"
            ) from None
        return lambda value: regex.match(value) is not None
    if caseless:
        lowered = pattern.lower()
        return lambda value: fnmatch.fnmatchcase(value.lower(), lowered)
    return lambda value: fnmatch.fnmatchcase(value, pattern)


class UrlPreviewer:
    def __init__(
        self,
        client: OutboundHttpClient,
        store: UrlPreviewStore,
        clock: Clock,
        config: UrlPreviewConfig,
        images: PreviewImageSink,
        *,
        threads: MediaThreads | None = None,
    ) -> None:
        """``threads``: where pages are parsed.  Parsing is CPU work (bounded: see
        :data:`~homeserver.media.preview.opengraph.MAX_PARSED_CHARS`, up to a quarter of
        a second for a hostile page); without a pool it runs on the reactor thread."""
        self._client = client
        self._threads = threads
        self._store = store
        self._clock = clock
        self._config = config
        self._images = images
        self._blacklist = UrlBlacklist(config.url_blacklist)
        self._flights: SingleFlight[str, dict[str, Any]] = SingleFlight()
        self._fetch_headers = {"Accept-Language": ", ".join(config.accept_language)}

    async def preview(self, url: str) -> dict[str, Any]:
        """The preview of ``url``: ``og:*`` keys (see the module docstring), or a
        :class:`MatrixError`."""
        _validate(url)
        self._check_url(url)
        preview = await self._flights.run(url, lambda: self._cached_or_fetched(url))
        # Every concurrent caller got the same dict; each gets its own to change.
        return dict(preview)

    def _check_url(self, url: str) -> None:
        if self._blacklist.blocks(url):
            logger.info("URL preview of %s refused by url_preview_url_blacklist", url)
            raise forbidden("URL blocked by the URL preview blacklist")

    async def _cached_or_fetched(self, url: str) -> dict[str, Any]:
        cached = await self._store.get(url, self._clock.time_msec())
        if cached is not None:
            if cached.error is not None:
                raise _error_from_json(cached.error)
            return cached.preview or {}
        try:
            preview = await self._make_preview(url)
        except MatrixError as error:
            # Upstream failures are kept; refusals by policy are not, since they
            # depend on the config, which a restart may have changed.
            if error.status >= 500:
                now = self._clock.time_msec()
                lifetime = min(ERROR_CACHE_MS, self._config.cache_lifetime_ms)
                await self._store.put(url, now, now + lifetime, None, _error_to_json(error))
            raise
        now = self._clock.time_msec()
        await self._store.put(url, now, now + self._config.cache_lifetime_ms, preview, None)
        return preview

    async def _make_preview(self, url: str) -> dict[str, Any]:
        response = await self._fetch(url, accept=_PAGE_ACCEPT)
        if not 200 <= response.code < 300:
            raise MatrixError(
                HTTPStatus.BAD_GATEWAY, Codes.UNKNOWN, f"The URL answered HTTP {response.code}"
            )
        content_type = response.headers.get("content-type")
        media_type = _media_type(content_type)
        if media_type in _HTML_TYPES or (media_type is None and _looks_like_html(response.body)):
            preview = await self._parse(response.body, response.url, content_type)
            await self._attach_page_image(preview)
            return preview
        preview = {}
        title = _file_name(response)
        if title:
            preview["og:title"] = title
        if media_type is not None and media_type.startswith("image/"):
            image = await self._store_image(response.body, media_type, response.url)
            if image is not None:
                preview.update(_image_keys(image))
        return preview

    async def _parse(self, body: bytes, url: str, content_type: str | None) -> dict[str, Any]:
        if self._threads is None:
            return parse_html_preview(body, url=url, content_type_header=content_type)
        return await self._threads.run(
            parse_html_preview, body, url=url, content_type_header=content_type
        )

    async def _attach_page_image(self, preview: dict[str, Any]) -> None:
        """Replace the page's ``og:image`` (a URL) by the image stored as media, or drop
        it (and what the page said about it) when it cannot be had."""
        image_url = preview.get("og:image")
        for key in _IMAGE_KEYS:
            preview.pop(key, None)
        if not isinstance(image_url, str):
            return
        try:
            self._check_url(image_url)
            response = await self._fetch(image_url, accept=_IMAGE_ACCEPT)
        except (MatrixError, OutboundError) as error:
            logger.info("Preview image %s not fetched: %s", image_url, error)
            return
        media_type = _media_type(response.headers.get("content-type"))
        if not 200 <= response.code < 300 or not (media_type or "").startswith("image/"):
            logger.info("Preview image %s: HTTP %d, %s", image_url, response.code, media_type)
            return
        assert media_type is not None
        image = await self._store_image(response.body, media_type, response.url)
        if image is not None:
            preview.update(_image_keys(image))

    async def _store_image(self, body: bytes, media_type: str, url: str) -> PreviewImage | None:
        try:
            return await self._images.store_preview_image(body, media_type, url)
        except defer.CancelledError:
            raise
        except Exception:
            # The image is an extra: a preview without it beats no preview.
            logger.warning("Storing the preview image of %s failed", url, exc_info=True)
            return None

    async def _fetch(self, url: str, *, accept: str) -> OutboundResponse:
        """GET ``url`` within the configured limits; failures as Matrix errors."""
        try:
            return await self._client.get(
                url,
                max_size=self._config.max_spider_size,
                timeout=self._config.timeout_ms / 1000,
                headers={**self._fetch_headers, "Accept": accept},
                check_url=self._check_url,
            )
        except OutboundRefused as error:
            logger.info("URL preview of %s refused: %s", url, error)
            if error.blocked_addresses:
                raise forbidden("IP address blocked") from None
            raise forbidden("Redirected to a URL that is not http(s)") from None
        except OutboundTooLarge:
            raise MatrixError(
                HTTPStatus.BAD_GATEWAY,
                Codes.TOO_LARGE,
                f"The content is larger than {self._config.max_spider_size} bytes",
            ) from None
        except OutboundTimeout:
            raise MatrixError(
                HTTPStatus.GATEWAY_TIMEOUT, Codes.UNKNOWN, "Timed out fetching the URL"
            ) from None
        except OutboundError as error:
            logger.info("URL preview of %s failed: %s", url, error)
            raise MatrixError(
                HTTPStatus.BAD_GATEWAY, Codes.UNKNOWN, "Could not fetch the URL"
            ) from None


def _validate(url: str) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise invalid_param(f"URL is longer than {MAX_URL_LENGTH} characters")
    if _URL_UNSAFE.search(url):
        raise invalid_param("URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError:
        raise invalid_param("Invalid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_param("Only http and https URLs can be previewed")


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type or None


def _looks_like_html(body: bytes) -> bool:
    """For pages served without a Content-Type: what a browser would sniff as HTML."""
    start = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<title", b"<meta"))


def _file_name(response: OutboundResponse) -> str | None:
    """The name of the file served: Content-Disposition's, else the URL's last segment."""
    disposition = response.headers.get("content-disposition", "")
    # RFC 6266: filename* (RFC 8187, charset'language'percent-encoded) wins over filename.
    extended = re.search(r"filename\*\s*=\s*([\w-]+)'[^']*'([^;\s]+)", disposition, re.I)
    plain = re.search(r'filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;\s]+)', disposition, re.I)
    try:
        if extended:
            name = unquote(extended.group(2), encoding=extended.group(1), errors="replace")
        elif plain:
            name = plain.group(1) if plain.group(1) is not None else plain.group(2)
        else:
            name = unquote(urlsplit(response.url).path.rsplit("/", 1)[-1], errors="replace")
    except (ValueError, LookupError):
        return None
    # A name, never a path, and no control characters (it is shown to users).
    name = _CONTROL_CHARACTERS.sub(" ", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:MAX_FILE_NAME_CHARS] or None


def _image_keys(image: PreviewImage) -> dict[str, Any]:
    keys: dict[str, Any] = {
        "og:image": image.mxc,
        "og:image:type": image.mimetype,
        "matrix:image:size": image.size,
    }
    if image.width is not None:
        keys["og:image:width"] = image.width
    if image.height is not None:
        keys["og:image:height"] = image.height
    return keys


def _error_to_json(error: MatrixError) -> dict[str, Any]:
    return {"status": int(error.status), "errcode": error.errcode, "error": error.message}


def _error_from_json(stored: Mapping[str, Any]) -> MatrixError:
    return MatrixError(
        int(stored.get("status", HTTPStatus.BAD_GATEWAY)),
        str(stored.get("errcode", Codes.UNKNOWN)),
        str(stored.get("error", "Could not fetch the URL")),
    )
