"""Routing and JSON responses on twisted.web.

One :class:`JsonResource` serves every JSON endpoint.  Servlets register
``async def handler(request, **path_params) -> (status, body)`` functions with the
:class:`Router`; everything they raise becomes a Matrix error response, so no
request ever ends in a traceback or an HTML error page.

spec: client-server-api/_index.md#api-standards, #web-browser-clients (CORS)
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import attrs
from twisted.internet import defer
from twisted.web import resource, server

from homeserver import errors
from homeserver.errors import TextWithNulError
from homeserver.http.files import FileResponse
from homeserver.http.request import MatrixRequest

logger = logging.getLogger(__name__)

JsonHandler = Callable[..., Awaitable[tuple[int, Any]]]

CORS_HEADERS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization",
    b"Access-Control-Expose-Headers": b"Retry-After",
}

#: Set on handlers that :func:`cancel_on_disconnect` marks.
_CANCEL_ON_DISCONNECT = "_cancel_on_disconnect"


def cancel_on_disconnect(handler: JsonHandler) -> JsonHandler:
    """Mark a handler to be cancelled when its client disconnects.

    Only for handlers that change nothing, or whose changes are complete before any
    point where they await (a read, a long-poll): cancellation lands at whichever
    ``await`` the handler is in, and a half-done write must never be abandoned.
    """
    setattr(handler, _CANCEL_ON_DISCONNECT, True)
    return handler


_PLACEHOLDER = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


@attrs.frozen
class _PathRoutes:
    pattern: re.Pattern[str] | None
    handlers: dict[str, JsonHandler]


class Router:
    """Maps ``(method, path)`` to handlers.

    Patterns use ``{name}`` for one path segment, passed to the handler as a keyword
    argument after percent-decoding.  Exact paths are looked up in a dict; only
    paths with parameters are matched by regular expression.
    """

    def __init__(self) -> None:
        self._exact: dict[str, _PathRoutes] = {}
        self._patterns: dict[str, _PathRoutes] = {}

    def register(self, method: str, path: str, handler: JsonHandler) -> None:
        if _PLACEHOLDER.search(path) is None:
            routes = self._exact.setdefault(path, _PathRoutes(None, {}))
        else:
            routes = self._patterns.setdefault(path, _PathRoutes(_compile(path), {}))
        if method in routes.handlers:
            raise ValueError(f"{method} {path} registered twice")
        routes.handlers[method] = handler

    def routes(self) -> list[tuple[str, str]]:
        """Every registered ``(method, path pattern)``, exact paths first."""
        return [
            (method, path)
            for table in (self._exact, self._patterns)
            for path, routes in table.items()
            for method in routes.handlers
        ]

    def match(self, path: str) -> tuple[dict[str, JsonHandler], dict[str, str]] | None:
        """The handlers by method for ``path``, and its raw (still encoded) parameters."""
        exact = self._exact.get(path)
        if exact is not None:
            return exact.handlers, {}
        for routes in self._patterns.values():
            assert routes.pattern is not None
            found = routes.pattern.match(path)
            if found is not None:
                return routes.handlers, found.groupdict()
        return None


def _compile(path: str) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    for placeholder in _PLACEHOLDER.finditer(path):
        parts.append(re.escape(path[position : placeholder.start()]))
        parts.append(f"(?P<{placeholder.group(1)}>[^/]+)")
        position = placeholder.end()
    parts.append(re.escape(path[position:]))
    return re.compile("^" + "".join(parts) + "$")


def client_paths(path: str, versions: tuple[str, ...] = ("v3", "r0")) -> list[str]:
    """``/_matrix/client/<version><path>`` for each version a client may use."""
    return [f"/_matrix/client/{version}{path}" for version in versions]


class JsonResource(resource.Resource):
    """The twisted.web resource that dispatches every request to the router."""

    isLeaf = True

    def __init__(self, router: Router) -> None:
        super().__init__()
        self._router = router

    def render(self, request: server.Request) -> int:
        assert isinstance(request, MatrixRequest)
        for name, value in CORS_HEADERS.items():
            request.setHeader(name, value)
        dispatch = defer.ensureDeferred(self._dispatch(request))
        # The errback runs only if the connection goes before the response is done.
        request.notifyFinish().addErrback(self._client_gone, request, dispatch)
        return server.NOT_DONE_YET

    @staticmethod
    def _client_gone(_: object, request: MatrixRequest, dispatch: defer.Deferred[None]) -> None:
        if request.cancel_on_disconnect and not dispatch.called:
            dispatch.cancel()

    async def _dispatch(self, request: MatrixRequest) -> None:
        try:
            status, body = await self._route(request)
        except errors.MatrixError as error:
            for name, value in error.headers.items():
                request.setHeader(name, value)
            status, body = error.status, error.to_json()
        except defer.CancelledError:
            if request.cancel_on_disconnect and getattr(request, "_disconnected", False):
                # The client went away and took its long-poll with it: nobody to answer.
                logger.info(
                    "%s %s: client disconnected, request abandoned",
                    request.method.decode("ascii", "replace"),
                    request.loggable_uri(),
                )
                return
            # Cancelled by something other than its client leaving: a bug.
            status, body = _internal_error(request, "was cancelled")
        except TextWithNulError as refused:
            # A request value no validation caught reached the database.
            invalid = errors.invalid_param(str(refused))
            status, body = invalid.status, invalid.to_json()
        except Exception:
            status, body = _internal_error(request, "failed")
        if isinstance(body, FileResponse):
            if not request.finished and not getattr(request, "_disconnected", False):
                body.send(request)
            return
        respond_json(request, status, body)

    async def _route(self, request: MatrixRequest) -> tuple[int, Any]:
        method = request.method.decode("ascii", "replace")
        if method == "OPTIONS":
            # spec: answer preflights for every path without running endpoint logic.
            return 200, {}
        if request.body_too_large:
            raise errors.too_large(request.max_body_size)
        path = request.path.decode("ascii", "replace")
        matched = self._router.match(path)
        if matched is None:
            raise errors.unrecognized_endpoint()
        handlers, raw_params = matched
        handler = handlers.get("GET" if method == "HEAD" else method)
        if handler is None:
            raise errors.method_not_allowed(method, list(handlers))
        params = {name: _decode_path_param(value) for name, value in raw_params.items()}
        request.cancel_on_disconnect = getattr(handler, _CANCEL_ON_DISCONNECT, False)
        return await handler(request, **params)


def _internal_error(request: MatrixRequest, what: str) -> tuple[int, Any]:
    """Log the exception being handled with its traceback; the 500 to answer."""
    logger.error(
        "request %s %s %s",
        request.method.decode("ascii", "replace"),
        request.loggable_uri(),
        what,
        exc_info=True,
    )
    internal = errors.internal_error()
    return internal.status, internal.to_json()


def _decode_path_param(value: str) -> str:
    try:
        decoded = unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise errors.invalid_param("Path parameter is not valid UTF-8") from None
    if "\x00" in decoded:
        # No identifier, type or key in the API may hold NUL (nor can PostgreSQL text).
        raise errors.invalid_param("Path parameter contains a NUL character")
    return decoded


def encode_json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@attrs.frozen
class PlainText:
    """A handler result sent as ``text/plain`` instead of JSON (e.g. ``/health``)."""

    text: str


#: The Content-Security-Policy of server-rendered pages: no scripts at all, no
#: framing (clickjacking a form), forms post only here, no <base> to move links.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)
#: Sent with every server-rendered page besides its policy: X-Frame-Options for
#: browsers without frame-ancestors; no referrer, since page URLs carry secrets
#: (UIA sessions, email validation tokens, signed unsubscribe links).
PAGE_HEADERS = {
    b"X-Frame-Options": b"DENY",
    b"X-Content-Type-Options": b"nosniff",
    b"Referrer-Policy": b"no-referrer",
}


@attrs.frozen
class HtmlPage:
    """A handler result sent as ``text/html``, by default with a policy that allows
    no scripts (a page with one names it by hash in ``policy``)."""

    html: str
    policy: str = PAGE_POLICY


def respond_json(request: server.Request, status: int, body: Any) -> None:
    """Write a JSON (or :class:`PlainText`/:class:`HtmlPage`) response unless the
    client has gone away."""
    if request.finished or getattr(request, "_disconnected", False):
        return
    if isinstance(body, PlainText):
        payload = body.text.encode("utf-8")
        content_type = b"text/plain; charset=utf-8"
    elif isinstance(body, HtmlPage):
        payload = body.html.encode("utf-8")
        content_type = b"text/html; charset=utf-8"
        request.setHeader(b"Content-Security-Policy", body.policy.encode("ascii"))
        for name, value in PAGE_HEADERS.items():
            request.setHeader(name, value)
    else:
        payload = encode_json(body)
        content_type = b"application/json"
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Cache-Control", b"no-cache, no-store, must-revalidate")
    request.setHeader(b"Content-Length", str(len(payload)).encode("ascii"))
    request.write(payload)
    request.finish()
