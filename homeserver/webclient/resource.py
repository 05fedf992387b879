"""The client listener's root: the web client's files, and every server path
handed on unchanged.

A ``GET`` or ``HEAD`` for a path outside the server's own prefixes (``/_matrix``,
``/_synapse``, ``/.well-known``, ``/health`` and any other first segment the
router knows) is the app's: a file of the build if there is one by that name, else
``index.html`` (deep links, and the service worker's navigation fallback), except
under ``/assets/`` where a missing file is a 404 (a stale page asking for a
previous build's chunk must fail, not get HTML).  Everything else, and everything
while no build exists (``/`` then shows the landing page), goes to the inner
resource: unknown ``/_matrix`` paths keep their JSON ``M_UNRECOGNIZED``.
"""

from __future__ import annotations

import logging
from email.utils import formatdate, parsedate_to_datetime

from twisted.internet import defer, threads
from twisted.web import resource, server

from homeserver.webclient.assets import AppFiles, Asset
from homeserver.webclient.policy import (
    STATIC_HEADERS,
    content_security_policy,
    inline_script_hashes,
)

logger = logging.getLogger(__name__)

#: Always the server's, whatever the router holds.
SERVER_PREFIXES = frozenset({"_matrix", "_synapse", ".well-known", "health"})


def server_prefixes(routes: list[tuple[str, str]]) -> frozenset[str]:
    """The first path segments of the router's routes, with :data:`SERVER_PREFIXES`."""
    firsts = {path.split("/")[1] for _, path in routes if path.count("/") >= 1}
    return SERVER_PREFIXES | frozenset(first for first in firsts if first)


class WebClientRoot(resource.Resource):
    isLeaf = True

    def __init__(
        self,
        inner: resource.Resource,
        app: AppFiles | None,
        *,
        prefixes: frozenset[str],
        homeserver_url: str,
        location: str | None = None,
    ) -> None:
        """``app`` None: no web client (``web_client.enabled: false``); ``location``:
        ``/`` redirects there (Synapse's ``web_client_location``)."""
        super().__init__()
        self._inner = inner
        self._app = app
        self._prefixes = prefixes
        self._homeserver_url = homeserver_url
        self._location = location
        self._hashes: tuple[tuple[int, int], list[str]] | None = None

    def render(self, request: server.Request) -> int | bytes:
        path = request.path.decode("ascii", "replace")
        reading = request.method in (b"GET", b"HEAD")
        if self._location is not None and reading and path == "/":
            request.setResponseCode(302)
            request.setHeader("Location", self._location)
            request.setHeader("Content-Length", "0")
            return b""
        index = None
        if self._app is not None and reading and not self._is_server_path(path):
            index = self._app.index
        if self._app is None or index is None:
            # A server path, or no build: the landing page answers / then.
            rendered: int | bytes = self._inner.render(request)
            return rendered
        asset = index if path == "/" else self._app.find(path)
        if asset is None:
            if path.startswith("/assets/"):
                return _not_found(request)
            asset = index
        defer.ensureDeferred(self._serve(request, index, asset)).addErrback(
            self._failed, request, asset
        )
        return server.NOT_DONE_YET

    def _is_server_path(self, path: str) -> bool:
        first = path.split("/", 2)[1] if path.startswith("/") else ""
        return first in self._prefixes

    async def _serve(self, request: server.Request, index: Asset, asset: Asset) -> None:
        policy = content_security_policy(
            script_hashes=await self._script_hashes(index),
            host=_header(request, "host"),
            homeserver_url=self._homeserver_url,
        )
        for name, value in STATIC_HEADERS.items():
            request.setHeader(name, value)
        request.setHeader("Content-Security-Policy", policy)
        request.setHeader("Content-Type", asset.content_type)
        request.setHeader("Cache-Control", asset.cache_control)
        request.setHeader("Last-Modified", formatdate(asset.last_modified, usegmt=True))
        gzipped = asset.compressible and _accepts_gzip(_header(request, "accept-encoding"))
        if asset.compressible:
            request.setHeader("Vary", "Accept-Encoding")
        # Each representation has its own strong validator.
        etag = asset.etag[:-1] + '-gz"' if gzipped else asset.etag
        request.setHeader("ETag", etag)
        if _not_modified(request, asset, etag):
            request.setResponseCode(304)
            request.finish()
            return
        body = await self._body(asset, gzipped)
        if request.finished or getattr(request, "_disconnected", False):
            return
        if gzipped:
            request.setHeader("Content-Encoding", "gzip")
        request.setResponseCode(200)
        request.setHeader("Content-Length", str(len(body)))
        if request.method != b"HEAD":
            request.write(body)
        request.finish()

    async def _body(self, asset: Asset, gzipped: bool) -> bytes:
        assert self._app is not None
        body = self._app.cached_body(asset, gzipped)
        if body is None:
            body = await threads.deferToThread(self._app.load_body, asset, gzipped)
            self._app.remember(asset, gzipped, body)
        return body

    async def _script_hashes(self, index: Asset) -> list[str]:
        """The hashes of index.html's inline scripts, computed once per version of it."""
        version = (index.size, index.mtime_ns)
        if self._hashes is None or self._hashes[0] != version:
            text = (await self._body(index, False)).decode("utf-8", "replace")
            self._hashes = (version, inline_script_hashes(text))
        return self._hashes[1]

    @staticmethod
    def _failed(failure: object, request: server.Request, asset: Asset) -> None:
        # The file went away between the lookup and the read (a rebuild): say so.
        logger.warning("serving %s failed: %s", asset.name, failure)
        if not request.finished and not getattr(request, "_disconnected", False):
            if request.startedWriting:
                transport = request.transport
                if transport is not None:
                    transport.loseConnection()
                return
            request.setResponseCode(503)
            request.setHeader("Content-Type", "text/plain; charset=utf-8")
            request.setHeader("Retry-After", "1")
            request.write(b"The web client is being rebuilt; try again.\n")
            request.finish()


def _header(request: server.Request, name: str) -> str | None:
    value = request.getHeader(name)
    return value if isinstance(value, str) else None


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """RFC 9110 §12.5.3: ``gzip`` (or ``*``) listed without ``q=0``."""
    if not accept_encoding:
        return False
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        quality = params.replace(" ", "").lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def _not_modified(request: server.Request, asset: Asset, etag: str) -> bool:
    """RFC 9110 §13.1.2-3: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = _header(request, "if-none-match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or etag in tags
    if_modified_since = _header(request, "if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError):
        return False
    return int(asset.last_modified) <= since


def _not_found(request: server.Request) -> bytes:
    request.setResponseCode(404)
    request.setHeader("Content-Type", "text/plain; charset=utf-8")
    request.setHeader("Cache-Control", "no-cache")
    for name, value in STATIC_HEADERS.items():
        request.setHeader(name, value)
    return b"Not found: this file is not part of the current web client build.\n"
