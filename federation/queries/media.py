"""Media of other servers: ``GET /_matrix/federation/v1/media/download/{mediaId}``,
whose answer is ``multipart/mixed``: a JSON part (metadata, unused so far), then
the file itself or a ``Location`` header naming where to fetch it (an HTTPS URL,
fetched unsigned through the ordinary outbound client, so the IP blacklist and the
size cap hold there too).

A server that does not know the endpoint (``M_UNRECOGNIZED``, servers older than
Matrix 1.11) is asked on the legacy ``/_matrix/media/v3/download`` instead, as
Synapse does.  The downloaded bytes go to a temporary file beside the media store,
which the remote media cache then takes over.  The federation client reads a whole
answer into memory (capped at ``max_upload_size`` plus the multipart framing), so
one download holds at most that much; concurrent downloads of one file share one
fetch (the cache's single flight), and at most :data:`MAX_CONCURRENT_FETCHES`
downloads run at once, :data:`MAX_CONCURRENT_FETCHES_PER_ORIGIN` of them from one
server (:class:`FetchLimits`; the others wait their turn), which bounds the memory
remote media can take to about ``MAX_CONCURRENT_FETCHES x max_upload_size``.

spec: server-server-api.md#content-repository (data/api/server-server/
authed_content_repo.yaml); client-server-api/modules/content_repo.md
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit

from twisted.internet.defer import DeferredSemaphore

from federation.client.errors import (
    FederationRequestError,
    FederationUnreachable,
    ResponseTooLarge,
)
from federation.client.http import FederationHttpClient
from federation.queries.multipart import MultipartError, Part, boundary_of, parse_multipart
from federation.queries.remote_errors import bad_gateway, remote_failure
from homeserver import errors
from homeserver.errors import MatrixError
from homeserver.http.outbound import OutboundError, OutboundHttpClient, OutboundTooLarge
from homeserver.media.remote import FetchedMedia
from homeserver.media.spool import HEAD_SIZE, SpooledFile
from homeserver.media.threads import MediaThreads

logger = logging.getLogger(__name__)

DOWNLOAD_PATH = "/_matrix/federation/v1/media/download/"
LEGACY_DOWNLOAD_PATH = "/_matrix/media/v3/download/"
#: How long the remote server may wait for an upload still in progress.
REMOTE_WAIT_MS = 20_000
DOWNLOAD_TIMEOUT_S = 120.0
#: What the multipart framing and JSON part may add to the file's size.
FRAMING_ALLOWANCE = 64 * 1024
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*utf-8''([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*(?:"([^"]*)"|([^;\s]+))', re.IGNORECASE)
_MAX_NAME = 255
#: Remote media downloads running at once, in all and from one server.
MAX_CONCURRENT_FETCHES = 8
MAX_CONCURRENT_FETCHES_PER_ORIGIN = 2

_T = TypeVar("_T")


class FetchLimits:
    """At most ``total`` pieces of work at once, ``per_origin`` of them for one
    origin; the rest wait in order.  A waiter takes its origin's slot before a
    global one, so one busy origin cannot hold the global slots with its queue.
    An origin's semaphore exists only while work of it runs or waits."""

    def __init__(self, *, total: int, per_origin: int) -> None:
        self._total = DeferredSemaphore(total)
        self._per_origin = per_origin
        self._origins: dict[str, DeferredSemaphore] = {}
        self._users: Counter[str] = Counter()

    @property
    def origins_tracked(self) -> int:
        return len(self._origins)

    async def run(self, origin: str, work: Callable[[], Awaitable[_T]]) -> _T:
        semaphore = self._origins.get(origin)
        if semaphore is None:
            semaphore = self._origins[origin] = DeferredSemaphore(self._per_origin)
        self._users[origin] += 1
        try:
            await semaphore.acquire()
            try:
                await self._total.acquire()
                try:
                    return await work()
                finally:
                    self._total.release()
            finally:
                semaphore.release()
        finally:
            self._users[origin] -= 1
            if self._users[origin] <= 0:
                del self._users[origin], self._origins[origin]


class FederationMediaSource:
    """Implements ``homeserver.media.remote.RemoteMediaSource``."""

    def __init__(
        self,
        *,
        client: FederationHttpClient,
        http: OutboundHttpClient,
        threads: MediaThreads,
        temp_dir: Callable[[], Path],
    ) -> None:
        self._client = client
        self._http = http
        self._threads = threads
        self._temp_dir = temp_dir
        self._limits = FetchLimits(
            total=MAX_CONCURRENT_FETCHES, per_origin=MAX_CONCURRENT_FETCHES_PER_ORIGIN
        )

    async def fetch(self, origin: str, media_id: str, *, max_size: int) -> FetchedMedia:
        return await self._limits.run(origin, lambda: self._fetch(origin, media_id, max_size))

    async def _fetch(self, origin: str, media_id: str, max_size: int) -> FetchedMedia:
        try:
            content, headers = await self._download(origin, media_id, max_size)
        except ResponseTooLarge:
            raise _too_large(origin) from None
        except (FederationRequestError, FederationUnreachable) as error:
            raise remote_failure(error, "Media") from None
        if len(content) > max_size:
            raise _too_large(origin)
        file = await self._threads.run(_write_temp_file, self._temp_dir(), content)
        return FetchedMedia(
            file=file,
            content_type=_content_type(headers.get("content-type")),
            upload_name=_file_name(headers.get("content-disposition")),
        )

    async def _download(
        self, origin: str, media_id: str, max_size: int
    ) -> tuple[bytes, Mapping[str, str]]:
        """The file's bytes and the headers describing them."""
        try:
            answer = await self._client.get_file(
                origin,
                DOWNLOAD_PATH + quote(media_id, safe=""),
                args={"timeout_ms": str(REMOTE_WAIT_MS)},
                max_size=max_size + FRAMING_ALLOWANCE,
                timeout=DOWNLOAD_TIMEOUT_S,
            )
        except FederationRequestError as error:
            if error.errcode != errors.Codes.UNRECOGNIZED or error.status not in (400, 404, 405):
                raise
            return await self._legacy_download(origin, media_id, max_size)
        if 300 <= answer.status < 400:
            return await self._follow(origin, answer.headers.get("location"), max_size)
        try:
            boundary = boundary_of(answer.headers.get("content-type", ""))
            parts = parse_multipart(answer.body, boundary, max_parts=2)
        except MultipartError as error:
            logger.info("media %s/%s: unusable answer: %s", origin, media_id, error)
            raise bad_gateway(f"{origin} answered the media download badly") from None
        if len(parts) != 2:
            raise bad_gateway(f"{origin} answered the media download without the file")
        file_part: Part = parts[1]
        if "location" in file_part.headers:
            return await self._follow(origin, file_part.headers["location"], max_size)
        return file_part.body, file_part.headers

    async def _legacy_download(
        self, origin: str, media_id: str, max_size: int
    ) -> tuple[bytes, Mapping[str, str]]:
        answer = await self._client.get_file(
            origin,
            LEGACY_DOWNLOAD_PATH + quote(origin, safe="") + "/" + quote(media_id, safe=""),
            args={"allow_remote": "false", "timeout_ms": str(REMOTE_WAIT_MS)},
            max_size=max_size,
            timeout=DOWNLOAD_TIMEOUT_S,
        )
        if answer.status != 200:
            raise bad_gateway(f"{origin} answered the media download with {answer.status}")
        return answer.body, answer.headers

    async def _follow(
        self, origin: str, location: str | None, max_size: int
    ) -> tuple[bytes, Mapping[str, str]]:
        """The file at the URL ``origin`` redirected to (HTTPS only)."""
        if location is None or urlsplit(location).scheme != "https":
            raise bad_gateway(f"{origin} redirected the media download to no HTTPS URL")
        try:
            response = await self._http.get(
                location, max_size=max_size, timeout=DOWNLOAD_TIMEOUT_S, check_url=_https_only
            )
        except OutboundTooLarge:
            raise _too_large(origin) from None
        except OutboundError as error:
            logger.info("media of %s at %s: %s", origin, location, error)
            raise bad_gateway(f"Could not fetch the media {origin} redirected to") from None
        if response.code == 404:
            raise errors.not_found("Media not found")
        if response.code != 200:
            raise bad_gateway(f"The media {origin} redirected to answered {response.code}")
        return response.body, response.headers


def _https_only(url: str) -> None:
    if urlsplit(url).scheme != "https":
        raise OutboundError(f"not an HTTPS URL: {url}")


def _too_large(origin: str) -> MatrixError:
    return MatrixError(502, errors.Codes.TOO_LARGE, f"Media from {origin} is too large")


def _content_type(value: str | None) -> str | None:
    """The declared type if it is one (parameters kept, e.g. a charset)."""
    if value is None or len(value) > 255 or not value.isprintable():
        return None
    base = value.split(";", 1)[0].strip()
    return value.strip() if _CONTENT_TYPE.fullmatch(base) else None


def _file_name(disposition: str | None) -> str | None:
    """RFC 6266 ``filename*`` (UTF-8) or ``filename``, if printable and short."""
    if disposition is None:
        return None
    star = _FILENAME_STAR.search(disposition)
    if star is not None:
        name = unquote(star.group(1), errors="replace")
    else:
        plain = _FILENAME.search(disposition)
        if plain is None:
            return None
        name = plain.group(1) if plain.group(1) is not None else plain.group(2)
    if not name or len(name) > _MAX_NAME or not name.isprintable() or "/" in name:
        return None
    return name


def _write_temp_file(folder: Path, content: bytes) -> SpooledFile:
    """Runs on the media thread pool."""
    descriptor, name = tempfile.mkstemp(dir=folder, prefix="remote-")
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    return SpooledFile(
        path=Path(name),
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        head=content[:HEAD_SIZE],
    )
