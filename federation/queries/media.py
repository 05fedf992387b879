"""Media of other servers: ``GET /_matrix/federation/v1/media/download/{mediaId}``,
whose answer is ``multipart/mixed``: a JSON part (metadata, unused so far), then
the file itself or a ``Location`` header naming where to fetch it (an HTTPS URL,
fetched unsigned through the ordinary outbound client, so the IP blacklist and the
size cap hold there too).

A server that does not know the endpoint (``M_UNRECOGNIZED``, servers older than
Matrix 1.11) is asked on the legacy ``/_matrix/media/v3/download`` instead, as
Synapse does.

The answer is never held whole: its body is parsed as it arrives
(:class:`~federation.queries.multipart.MultipartReader` through
``federation/client/get_file.py``) and the file part is written, piece by piece, to
a temporary file beside the media store (:class:`~homeserver.media.spool.UploadSpool`:
disk work on the media threads, the connection paused while the disk falls behind),
which the remote media cache then takes over.  A file behind a ``Location`` goes
the same way, through the ordinary outbound client's streaming GET
(:meth:`~homeserver.http.outbound.OutboundHttpClient.get_streamed`).  A file over
``max_size`` (the upload limit) drops the connection as soon as it is seen to be
(502 ``M_TOO_LARGE``) and its partial file is deleted, as is the file of any
download that fails.  So one download holds a few MiB of memory at most, whatever
the file's size or where it is fetched from.  Concurrent downloads of one file share one
fetch (the cache's single flight), and at most :data:`MAX_CONCURRENT_FETCHES`
downloads run at once, :data:`MAX_CONCURRENT_FETCHES_PER_ORIGIN` of them from one
server (:class:`FetchLimits`; the others wait their turn), which bounds the
connections and disk writes remote media takes.

spec: server-server-api.md#content-repository (data/api/server-server/
authed_content_repo.yaml); client-server-api/modules/content_repo.md
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit

from twisted.internet.defer import DeferredSemaphore
from twisted.internet.interfaces import IPushProducer
from twisted.web.iweb import IResponse

from federation.client.errors import (
    FederationRequestError,
    FederationUnreachable,
    ResponseTooLarge,
)
from federation.client.http import FederationHttpClient
from federation.queries.multipart import MultipartError, MultipartReader, boundary_of
from federation.queries.remote_errors import bad_gateway, remote_failure
from homeserver import errors
from homeserver.errors import MatrixError
from homeserver.http.outbound import (
    OutboundError,
    OutboundHttpClient,
    OutboundTooLarge,
    drop_body,
    read_capped_body,
    stream_body,
)
from homeserver.media.remote import FetchedMedia
from homeserver.media.spool import SpooledFile, UploadSpool
from homeserver.media.threads import MediaThreads

logger = logging.getLogger(__name__)

DOWNLOAD_PATH = "/_matrix/federation/v1/media/download/"
LEGACY_DOWNLOAD_PATH = "/_matrix/media/v3/download/"
#: How long the remote server may wait for an upload still in progress.
REMOTE_WAIT_MS = 20_000
DOWNLOAD_TIMEOUT_S = 120.0
#: What the multipart framing and JSON part may add to the file's size.
FRAMING_ALLOWANCE = 64 * 1024
#: The largest body of an answer that is not the file (an error, a redirect).
MAX_OTHER_BODY = 64 * 1024
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*utf-8''([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*(?:"([^"]*)"|([^;\s]+))', re.IGNORECASE)
_MAX_NAME = 255
#: How a server without the federation download endpoint answers it.
_UNRECOGNIZED_STATUSES = (400, 404, 405)
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
            return await self._download(origin, media_id, max_size)
        except ResponseTooLarge:
            raise _too_large(origin) from None
        except (FederationRequestError, FederationUnreachable) as error:
            raise remote_failure(error, "Media") from None

    async def _download(self, origin: str, media_id: str, max_size: int) -> FetchedMedia:
        spool = _FileSpool(self._threads, self._temp_dir(), max_size)
        download = _MultipartDownload(spool)
        try:
            try:
                answer = await self._client.get_file(
                    origin,
                    DOWNLOAD_PATH + quote(media_id, safe=""),
                    args={"timeout_ms": str(REMOTE_WAIT_MS)},
                    max_size=max_size + FRAMING_ALLOWANCE,
                    timeout=DOWNLOAD_TIMEOUT_S,
                    read_body=download.read,
                )
            except FederationRequestError as error:
                unrecognized = error.errcode == errors.Codes.UNRECOGNIZED
                if not unrecognized or error.status not in _UNRECOGNIZED_STATUSES:
                    raise
                await spool.discard()
                return await self._legacy_download(origin, media_id, max_size)
            if 300 <= answer.status < 400:
                await spool.discard()
                return await self._follow(origin, answer.headers.get("location"), max_size)
            try:
                download.check_complete()
            except MultipartError as error:
                logger.info("media %s/%s: unusable answer: %s", origin, media_id, error)
                raise bad_gateway(f"{origin} answered the media download badly") from None
            if download.location is not None:
                await spool.discard()
                return await self._follow(origin, download.location, max_size)
            return await spool.fetched(download.file_headers)
        finally:
            await spool.discard()  # unless finished: then the file is the caller's

    async def _legacy_download(self, origin: str, media_id: str, max_size: int) -> FetchedMedia:
        spool = _FileSpool(self._threads, self._temp_dir(), max_size)
        try:
            answer = await self._client.get_file(
                origin,
                LEGACY_DOWNLOAD_PATH + quote(origin, safe="") + "/" + quote(media_id, safe=""),
                args={"allow_remote": "false", "timeout_ms": str(REMOTE_WAIT_MS)},
                max_size=max_size,
                timeout=DOWNLOAD_TIMEOUT_S,
                read_body=spool.read,
            )
            if answer.status != 200:
                raise bad_gateway(f"{origin} answered the media download with {answer.status}")
            return await spool.fetched(answer.headers)
        finally:
            await spool.discard()

    async def _follow(self, origin: str, location: str | None, max_size: int) -> FetchedMedia:
        """The file at the URL ``origin`` redirected to (HTTPS only, redirects
        included), fetched unsigned through the ordinary outbound client (its IP
        blacklist, redirect limit and timeout) and written to disk as it arrives,
        like a file part: past ``max_size`` the connection is dropped
        (``M_TOO_LARGE``), and the partial file of a failed download is deleted
        before the error is answered."""
        if location is None or urlsplit(location).scheme != "https":
            raise bad_gateway(f"{origin} redirected the media download to no HTTPS URL")
        spool = _FileSpool(self._threads, self._temp_dir(), max_size)

        async def read_body(response: IResponse) -> bytes:
            if response.code != 200:
                # Only the status is used: an error's body is not read at all.
                drop_body(response)
                return b""
            return await spool.read(response)

        try:
            try:
                response = await self._http.get_streamed(
                    location,
                    read_body=read_body,
                    timeout=DOWNLOAD_TIMEOUT_S,
                    check_url=_https_only,
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
            return await spool.fetched(response.headers)
        finally:
            await spool.discard()  # unless finished: then the file is the caller's


class _FileSpool:
    """A download's file, written to a temporary file beside the media store as it
    arrives (:class:`UploadSpool`: the disk work on the media threads, the
    connection paused while the disk falls behind), and refused past ``max_size``
    (``OutboundTooLarge``, which drops the connection)."""

    def __init__(self, threads: MediaThreads, folder: Path, max_size: int) -> None:
        self._threads = threads
        self._folder = folder
        self.max_size = max_size
        self._size = 0
        self._spool: UploadSpool | None = None
        self._finished = False

    async def read(self, response: IResponse) -> bytes:
        """A ``BodyReader`` for the legacy download, whose body is the file."""
        if not 200 <= response.code < 300:
            return await _error_body(response)
        await stream_body(response, self, max_size=self.max_size)
        return b""

    def started(self, transport: IPushProducer) -> None:
        self._spool = UploadSpool(self._threads, self._folder, transport)

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.max_size:
            raise OutboundTooLarge(f"the file is larger than {self.max_size} bytes")
        assert self._spool is not None, "write before started"
        self._spool.write(data)

    async def finish(self) -> SpooledFile:
        """The complete file, now the caller's."""
        assert self._spool is not None, "finish before started"
        finished = await self._spool.finish()
        self._finished = True
        return finished

    async def fetched(self, headers: Mapping[str, str]) -> FetchedMedia:
        """The complete file, now the caller's, with what the file's ``headers``
        say of it."""
        return FetchedMedia(
            file=await self.finish(),
            content_type=_content_type(headers.get("content-type")),
            upload_name=_file_name(headers.get("content-disposition")),
        )

    async def discard(self) -> None:
        """Drop the file (nothing if :meth:`finish` handed it over); returns once it
        is gone from the disk."""
        spool, self._spool = self._spool, None
        if spool is not None and not self._finished:
            await spool.discard_and_wait()


class _MultipartDownload:
    """The federation download's ``multipart/mixed`` body, parsed as it arrives:
    the JSON part (metadata: kept only to be bounded), then the file part, whose
    body goes to the spool, or whose ``Location`` header says where the file is."""

    def __init__(self, spool: _FileSpool) -> None:
        self._spool = spool
        self.max_size = spool.max_size + FRAMING_ALLOWANCE
        self._reader: MultipartReader | None = None
        #: Why the body is unusable, once it is known to be.
        self._error: MultipartError | None = None
        self._part = -1
        self._json_size = 0
        self.file_headers: dict[str, str] = {}
        self.location: str | None = None

    async def read(self, response: IResponse) -> bytes:
        """A ``BodyReader``: a 2xx body is parsed and streamed (``b""`` is returned);
        any other (an error's JSON, a redirect) is small and read into memory.  A
        malformed body is not a failure of the request (the server answered, so it
        is not backed off from) but of the download: :meth:`check_complete`."""
        if not 200 <= response.code < 300:
            return await _error_body(response)
        content_type = response.headers.getRawHeaders(b"content-type", [b""])[0]
        try:
            boundary = boundary_of(content_type.decode("latin-1"))
        except MultipartError as error:
            drop_body(response)
            self._error = error
            return b""
        self._reader = MultipartReader(boundary, self, max_parts=2)
        try:
            await stream_body(response, self, max_size=self.max_size)
        except MultipartError as error:  # the connection is dropped already
            self._error = error
        return b""

    def check_complete(self) -> None:
        """MultipartError unless both parts were read whole."""
        if self._error is not None:
            raise self._error
        if self._reader is None:
            raise MultipartError("the body was not read")
        self._reader.finish()
        if self._part < 1:
            raise MultipartError("no file part")

    # -- BodySink ----------------------------------------------------------------------

    def started(self, transport: IPushProducer) -> None:
        self._spool.started(transport)

    def write(self, data: bytes) -> None:
        assert self._reader is not None, "write before read"
        self._reader.feed(data)

    # -- PartHandler -----------------------------------------------------------------

    def part_started(self, headers: dict[str, str]) -> None:
        self._part += 1
        if self._part == 1:
            self.file_headers = headers
            self.location = headers.get("location")

    def part_data(self, data: bytes) -> None:
        if self._part == 0:
            self._json_size += len(data)
            if self._json_size > FRAMING_ALLOWANCE:
                raise MultipartError("the JSON part is too large")
        elif self.location is None:
            self._spool.write(data)

    def part_ended(self) -> None:
        pass


async def _error_body(response: IResponse) -> bytes:
    """An error answer's body, for its Matrix error; one too large to be one is
    dropped (the status still tells what happened, not "file too large")."""
    try:
        return await read_capped_body(response, MAX_OTHER_BODY)
    except OutboundTooLarge:
        return b""


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
