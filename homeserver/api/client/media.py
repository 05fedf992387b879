"""The content repository's endpoints.

- ``POST /_matrix/media/v3/upload``, ``POST /_matrix/media/v1/create`` and
  ``PUT /_matrix/media/v3/upload/{serverName}/{mediaId}``: uploads, whose bodies are
  streamed to disk as they arrive (:class:`UploadBodies`), never buffered whole.
- ``GET /_matrix/client/v1/media/{config,download,thumbnail,preview_url}``: the
  authenticated routes.  The deprecated unauthenticated ``/_matrix/media/v3/...``
  ones are served only with ``enable_authenticated_media: false``.

Every file is sent with headers that keep it from running as a page on our origin:
a sandboxing ``Content-Security-Policy``, ``X-Content-Type-Options: nosniff``, and
``Content-Disposition: inline`` only for the spec's list of safe types.

spec: client-server-api/modules/content_repo.md (data/api/client-server/
content-repo.yaml, authed-content-repo.yaml)
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import attrs

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.files import FileResponse
from homeserver.http.parsing import query_bool, query_int, query_str
from homeserver.http.request import MatrixRequest, StreamedBody
from homeserver.http.server import Router
from homeserver.media.assembly import MediaServices
from homeserver.media.content_types import base_type, is_inline
from homeserver.media.ids import is_valid_media_id, is_valid_media_path
from homeserver.media.repository import DEFAULT_WAIT_MS, MediaFile, MediaRepository
from homeserver.media.serving import MediaServer, UrlPreviews
from homeserver.media.spool import UploadSpool
from homeserver.media.threads import MediaThreads
from homeserver.ratelimit import RateLimiter

#: spec: content_repo.md — the recommended policy, plus media-src so that audio and
#: video opened on their own still play.
MEDIA_CSP = (
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
    "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"
)

_UPLOAD_PATH = re.compile(rb"/_matrix/media/(?:v3|r0|v1)/upload(?:/[^/?]+/[^/?]+)?(?:\?.*)?")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_MAX_NAME = 255


@attrs.frozen
class MediaServlets:
    """What the endpoints need."""

    server_name: str
    max_upload_size: int
    enable_authenticated_media: bool
    authenticator: RequestAuthenticator
    repository: MediaRepository
    media: MediaServer
    threads: MediaThreads
    upload_limiter: RateLimiter
    create_limiter: RateLimiter
    previews: UrlPreviews | None


class UploadBodies:
    """Streams the bodies of upload requests to the backend's temporary directory
    (a :class:`~homeserver.http.request.StreamedBodyFactory`), with
    ``max_upload_size`` as their limit instead of ``max_request_body_size``."""

    def __init__(self, media: MediaServices, max_size: int) -> None:
        self._threads = media.threads
        self._repository = media.repository
        self._max_size = max_size

    def streamed_body(
        self, method: bytes, path: bytes, request: MatrixRequest
    ) -> tuple[StreamedBody, int] | None:
        if method not in (b"POST", b"PUT") or _UPLOAD_PATH.fullmatch(path) is None:
            return None
        if request.getHeader("authorization") is None and b"access_token=" not in path:
            # It will be refused (401) anyway: no reason to take a large body to disk.
            return None
        spool = UploadSpool(self._threads, self._repository.temp_dir(), request.channel.transport)
        return spool, self._max_size


def register(router: Router, servlets: MediaServlets) -> None:
    s = servlets

    # -- uploads --------------------------------------------------------------------

    async def upload(request: MatrixRequest) -> tuple[int, Any]:
        requester = await s.authenticator.requester(request)
        spool = _spool_of(request)
        s.upload_limiter.ratelimit(requester.user_id)
        declared, name = _declared_type(request), _upload_name(request)
        await s.repository.check_upload_quota(requester.user_id, spool.size)
        spooled = await spool.finish()
        content_uri = await s.repository.upload(requester.user_id, spooled, declared, name)
        return 200, {"content_uri": content_uri}

    async def create(request: MatrixRequest) -> tuple[int, Any]:
        requester = await s.authenticator.requester(request)
        s.create_limiter.ratelimit(requester.user_id)
        created = await s.repository.create(requester.user_id)
        return 200, {
            "content_uri": created.content_uri,
            "unused_expires_at": created.unused_expires_at,
        }

    async def upload_to(request: MatrixRequest, server_name: str, media_id: str) -> tuple[int, Any]:
        requester = await s.authenticator.requester(request)
        spool = _spool_of(request)
        if server_name != s.server_name or not is_valid_media_id(media_id):
            raise errors.not_found("No such media ID on this server")
        s.upload_limiter.ratelimit(requester.user_id)
        declared, name = _declared_type(request), _upload_name(request)
        await s.repository.check_upload_quota(requester.user_id, spool.size)
        spooled = await spool.finish()
        await s.repository.upload_to(requester.user_id, media_id, spooled, declared, name)
        return 200, {}

    for version in ("v3", "r0", "v1"):
        router.register("POST", f"/_matrix/media/{version}/upload", upload)
    router.register("POST", "/_matrix/media/v1/create", create)
    for version in ("v3", "r0"):
        router.register(
            "PUT", f"/_matrix/media/{version}/upload/{{server_name}}/{{media_id}}", upload_to
        )

    # -- reading ----------------------------------------------------------------------

    async def config(request: MatrixRequest) -> tuple[int, Any]:
        await s.authenticator.requester(request)
        return 200, {"m.upload.size": s.max_upload_size}

    async def download(
        request: MatrixRequest, server_name: str, media_id: str, file_name: str | None = None
    ) -> tuple[int, Any]:
        await s.authenticator.requester(request, allow_guest=True)
        return 200, await _download(request, server_name, media_id, file_name)

    async def thumbnail(request: MatrixRequest, server_name: str, media_id: str) -> tuple[int, Any]:
        await s.authenticator.requester(request, allow_guest=True)
        return 200, await _thumbnail(request, server_name, media_id)

    async def info(request: MatrixRequest, server_name: str, media_id: str) -> tuple[int, Any]:
        await s.authenticator.requester(request, allow_guest=True)
        _check_media_path(server_name, media_id)
        if server_name != s.server_name:
            _check_allow_remote(request)
        return 200, await s.media.info(server_name, media_id, timeout_ms=_timeout_ms(request))

    async def preview_url(request: MatrixRequest) -> tuple[int, Any]:
        await s.authenticator.requester(request)
        if s.previews is None:
            raise errors.MatrixError(
                404, errors.Codes.UNRECOGNIZED, "URL previews are disabled on this server"
            )
        url = query_str(request, "url")
        if url is None:
            raise errors.missing_param("url")
        query_int(request, "ts")  # a preview as of then; ours are recent enough
        return 200, await s.previews.preview(url)

    async def _download(
        request: MatrixRequest, server_name: str, media_id: str, file_name: str | None
    ) -> FileResponse:
        _check_media_path(server_name, media_id)
        timeout_ms = _timeout_ms(request)
        if file_name is not None and (len(file_name) > _MAX_NAME or not file_name.isprintable()):
            raise errors.invalid_param("Invalid file name")
        if server_name != s.server_name:
            _check_allow_remote(request)
        media = await s.media.download(server_name, media_id, timeout_ms=timeout_ms)
        return _file_response(media, file_name or media.upload_name)

    async def _thumbnail(request: MatrixRequest, server_name: str, media_id: str) -> FileResponse:
        _check_media_path(server_name, media_id)
        width = _dimension(request, "width")
        height = _dimension(request, "height")
        method = query_str(request, "method", "scale")
        if method not in ("crop", "scale"):
            raise errors.invalid_param("'method' must be 'crop' or 'scale'")
        animated = query_bool(request, "animated") or False
        timeout_ms = _timeout_ms(request)
        if server_name != s.server_name:
            _check_allow_remote(request)
        made = await s.media.thumbnail(
            server_name,
            media_id,
            width=width,
            height=height,
            method="crop" if method == "crop" else "scale",
            animated=animated,
            timeout_ms=timeout_ms,
        )
        return _file_response(made, made.upload_name)

    def _file_response(media: MediaFile, file_name: str | None) -> FileResponse:
        return FileResponse(
            path=media.path,
            size=media.size,
            content_type=_served_type(media.content_type),
            headers=media_headers(media.content_type, file_name),
            etag=f'"{media.sha256}"' if media.sha256 else None,
            run_blocking=s.threads.run,
        )

    async def legacy_download(
        request: MatrixRequest, server_name: str, media_id: str, file_name: str | None = None
    ) -> tuple[int, Any]:
        return 200, await _download(request, server_name, media_id, file_name)

    async def legacy_thumbnail(
        request: MatrixRequest, server_name: str, media_id: str
    ) -> tuple[int, Any]:
        return 200, await _thumbnail(request, server_name, media_id)

    base = "/_matrix/client/v1/media"
    router.register("GET", f"{base}/config", config)
    router.register("GET", f"{base}/download/{{server_name}}/{{media_id}}", download)
    router.register("GET", f"{base}/download/{{server_name}}/{{media_id}}/{{file_name}}", download)
    router.register("GET", f"{base}/thumbnail/{{server_name}}/{{media_id}}", thumbnail)
    router.register("GET", f"{base}/preview_url", preview_url)
    # Our own (docs/media.md): an event's ``info`` without downloading the file.
    router.register(
        "GET",
        "/_matrix/client/unstable/dev.homeserver/media/info/{server_name}/{media_id}",
        info,
    )
    if not s.enable_authenticated_media:
        for version in ("v3", "r0", "v1"):
            legacy = f"/_matrix/media/{version}"
            router.register("GET", f"{legacy}/config", config)
            router.register("GET", f"{legacy}/preview_url", preview_url)
            router.register(
                "GET", f"{legacy}/download/{{server_name}}/{{media_id}}", legacy_download
            )
            router.register(
                "GET",
                f"{legacy}/download/{{server_name}}/{{media_id}}/{{file_name}}",
                legacy_download,
            )
            router.register(
                "GET", f"{legacy}/thumbnail/{{server_name}}/{{media_id}}", legacy_thumbnail
            )


def media_headers(content_type: str, file_name: str | None) -> dict[str, str]:
    """The headers every served file gets (spec: content_repo.md, "Serving inline
    content" and the security considerations)."""
    disposition = "inline" if is_inline(content_type) else "attachment"
    if file_name:
        disposition += "; " + _filename_parameter(file_name)
    return {
        "Content-Disposition": disposition,
        "Content-Security-Policy": MEDIA_CSP,
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Referrer-Policy": "no-referrer",
        # Media never change once uploaded; only the requester's own caches may keep
        # them, since access needs a token.
        "Cache-Control": "private, max-age=31536000, immutable",
    }


def _served_type(content_type: str) -> str:
    base = base_type(content_type)
    if base.startswith("text/") or base in ("application/json", "application/ld+json"):
        if "charset=" not in content_type.lower():
            return f"{content_type}; charset=utf-8"
    return content_type


def _filename_parameter(name: str) -> str:
    """RFC 6266: a plain ``filename`` when it is safe ASCII, else ``filename*``."""
    if name.isascii() and name.isprintable() and not any(c in name for c in '"\\;'):
        return f'filename="{name}"'
    return "filename*=utf-8''" + quote(name, safe="")


def _spool_of(request: MatrixRequest) -> UploadSpool:
    body = request.streamed_body
    if not isinstance(body, UploadSpool):
        # Only if the routes and UploadBodies disagree about what an upload is.
        raise errors.internal_error()
    return body


def _declared_type(request: MatrixRequest) -> str | None:
    value = request.getHeader("content-type")
    if value is None:
        return None
    value = value.strip()
    if len(value) > _MAX_NAME or not value.isprintable():
        raise errors.invalid_param("Invalid Content-Type")
    if _CONTENT_TYPE.fullmatch(base_type(value)) is None:
        raise errors.invalid_param(f"Invalid Content-Type {value!r}")
    return value


def _upload_name(request: MatrixRequest) -> str | None:
    name = query_str(request, "filename")
    if name is None or name == "":
        return None
    if len(name) > _MAX_NAME or not name.isprintable():
        raise errors.invalid_param("'filename' must be at most 255 printable characters")
    return name


def _check_media_path(server_name: str, media_id: str) -> None:
    # spec: content_repo.md#content-repo-security-considerations
    if not is_valid_media_path(server_name, media_id):
        raise errors.not_found("Media not found")


def _check_allow_remote(request: MatrixRequest) -> None:
    if query_bool(request, "allow_remote") is False:
        raise errors.not_found("Media not found (allow_remote is false)")


def _timeout_ms(request: MatrixRequest) -> int:
    value = query_int(request, "timeout_ms", DEFAULT_WAIT_MS)
    assert value is not None
    if value < 0:
        raise errors.invalid_param("'timeout_ms' must not be negative")
    return value


def _dimension(request: MatrixRequest, name: str) -> int:
    value = query_int(request, name)
    if value is None:
        raise errors.missing_param(name)
    if value <= 0 or value > 100_000:
        raise errors.invalid_param(f"'{name}' must be a positive number of pixels")
    return value
