"""Our media for other servers: ``GET /_matrix/federation/v1/media/download/
{mediaId}`` and ``/thumbnail/{mediaId}``, authenticated with X-Matrix, for media
uploaded here only.  The answer is ``multipart/mixed``: an empty JSON object (the
metadata part, which the spec leaves empty for now), then the file with its type
and disposition.  The file is streamed from disk as for a client's download.

spec: server-server-api.md#content-repository (data/api/server-server/
authed_content_repo.yaml)
"""

from __future__ import annotations

from typing import Any, cast

import attrs
from twisted.web import server

from federation.queries.multipart import closing, new_boundary, part_head
from federation.transport.server import FederationRequestAuthenticator
from homeserver import errors
from homeserver.api.client.media import media_headers
from homeserver.http.files import FileProducer, FileResponse
from homeserver.http.parsing import query_bool, query_int, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router
from homeserver.media.assembly import MediaServices
from homeserver.media.ids import is_valid_media_id
from homeserver.media.repository import DEFAULT_WAIT_MS, MediaFile

_MEDIA = "/_matrix/federation/v1/media"
#: Headers of the file part: what describes the file, not how a browser treats it.
_FILE_PART_HEADERS = ("Content-Disposition",)


@attrs.frozen
class MultipartFileResponse(FileResponse):
    """A file sent as the last part of a ``multipart/mixed`` body: ``prologue``
    (the parts before it and its own headers) is written first and ``epilogue``
    (the closing delimiter) after it.  No ranges: the body is one whole."""

    prologue: bytes = b""
    epilogue: bytes = b""

    def send(self, request: server.Request) -> None:
        # twisted.web's Request methods are untyped; Any keeps mypy's strict calls quiet.
        http: Any = request
        http.setResponseCode(200)
        http.setHeader("Content-Type", self.content_type)
        http.setHeader("Content-Length", str(len(self.prologue) + self.size + len(self.epilogue)))
        if http.method == b"HEAD":
            http.finish()
            return
        http.write(self.prologue)
        if self.size == 0:
            http.write(self.epilogue)
            http.finish()
            return
        assert self.run_blocking is not None
        finishing = cast(server.Request, _EpilogueFirst(http, self.epilogue))
        FileProducer(finishing, self.path, 0, self.size, self.run_blocking).start()


class _EpilogueFirst:
    """The request as the file producer sees it: finishing it writes the closing
    delimiter first."""

    def __init__(self, request: Any, epilogue: bytes) -> None:
        self._request = request
        self._epilogue = epilogue

    def finish(self) -> None:
        self._request.write(self._epilogue)
        self._request.finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def register(
    router: Router,
    *,
    authenticator: FederationRequestAuthenticator,
    media: MediaServices,
    server_name: str,
) -> None:
    async def download(request: MatrixRequest, media_id: str) -> tuple[int, Any]:
        await authenticator.authenticate(request, None)
        _check_media_id(media_id)
        found = await media.server.download(server_name, media_id, timeout_ms=_timeout_ms(request))
        return 200, _multipart(found)

    async def thumbnail(request: MatrixRequest, media_id: str) -> tuple[int, Any]:
        await authenticator.authenticate(request, None)
        _check_media_id(media_id)
        method = query_str(request, "method", "scale")
        if method not in ("crop", "scale"):
            raise errors.invalid_param("'method' must be 'crop' or 'scale'")
        made = await media.server.thumbnail(
            server_name,
            media_id,
            width=_dimension(request, "width"),
            height=_dimension(request, "height"),
            method="crop" if method == "crop" else "scale",
            animated=query_bool(request, "animated") or False,
            timeout_ms=_timeout_ms(request),
        )
        return 200, _multipart(made)

    def _multipart(file: MediaFile) -> MultipartFileResponse:
        boundary = new_boundary()
        described = media_headers(file.content_type, file.upload_name)
        file_headers = {"Content-Type": file.content_type}
        file_headers.update({name: described[name] for name in _FILE_PART_HEADERS})
        prologue = (
            part_head(boundary, {"Content-Type": "application/json"}, first=True)
            + b"{}"
            + part_head(boundary, file_headers, first=False)
        )
        return MultipartFileResponse(
            path=file.path,
            size=file.size,
            content_type=f"multipart/mixed; boundary={boundary}",
            run_blocking=media.threads.run,
            prologue=prologue,
            epilogue=closing(boundary),
        )

    router.register("GET", f"{_MEDIA}/download/{{media_id}}", download)
    router.register("GET", f"{_MEDIA}/thumbnail/{{media_id}}", thumbnail)


def _check_media_id(media_id: str) -> None:
    if not is_valid_media_id(media_id):
        raise errors.not_found("No such media on this server")


def _timeout_ms(request: MatrixRequest) -> int:
    value = query_int(request, "timeout_ms", DEFAULT_WAIT_MS)
    assert value is not None
    if value < 0:
        raise errors.invalid_param("'timeout_ms' must not be negative")
    return min(value, DEFAULT_WAIT_MS * 10)


def _dimension(request: MatrixRequest, name: str) -> int:
    value = query_int(request, name)
    if value is None:
        raise errors.missing_param(name)
    if value <= 0 or value > 100_000:
        raise errors.invalid_param(f"'{name}' must be a positive number of pixels")
    return value
