"""Media for the content-repository tests, and the helpers that upload and fetch it
from a running server.

The files are real: PNGs and JPEGs made with Pillow (one carrying EXIF orientation
6, as a phone held upright writes it), an Ogg Vorbis sine wave encoded by
libsndfile, a PDF, an animated GIF, and a PNG "image bomb" whose header claims
30000x30000 pixels while the file is a few hundred kilobytes.

:func:`running_media_server` starts the real server storing its media on the
filesystem or in an S3 bucket on moto's server (tests/support/s3.py), on SQLite or
PostgreSQL; :func:`stream_upload` sends an upload of any size from a generator over
a raw socket, reading the answer as soon as there is one.

spec: client-server-api/modules/content_repo.md
"""

from __future__ import annotations

import hashlib
import http.client
import io
import random
import select
import socket
import struct
import uuid
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

import attrs
import numpy
import soundfile
from PIL import ExifTags, Image

from tests.support.http import Response
from tests.support.matrix import auth, register, running_server
from tests.support.postgres import temporary_database
from tests.support.s3 import S3Server, media_storage_config, unique_bucket_name
from tests.support.server_process import ServerProcess

UPLOAD = "/_matrix/media/v3/upload"
CREATE = "/_matrix/media/v1/create"
#: The authenticated routes (spec: authed-content-repo.yaml).
MEDIA = "/_matrix/client/v1/media"
#: The deprecated unauthenticated ones (content-repo.yaml).
LEGACY_MEDIA = "/_matrix/media/v3"
ADMIN = "/_synapse/admin/v1"

#: Uploads and creates as often as the tests like (rc_media_upload allows 20 at once).
RELAXED_MEDIA_LIMITS: dict[str, Any] = {
    "rc_media_upload": {"per_second": 1000, "burst_count": 1000},
    "rc_media_create": {"per_second": 1000, "burst_count": 1000},
}

Backend = Literal["filesystem", "s3"]
Engine = Literal["sqlite", "postgres"]

# -- files -------------------------------------------------------------------------

RED = (255, 0, 0)
BLUE = (0, 0, 255)

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>hi</title></head>"
    b"<body><script>fetch('/_matrix/client/v3/account/whoami')</script></body></html>\n"
)


def png_image(width: int, height: int) -> bytes:
    """An RGB PNG of a colour gradient with some noise: every region differs, and
    it does not compress to nothing, as photos do not."""
    x = numpy.linspace(0, 255, width, dtype=numpy.uint8)
    y = numpy.linspace(0, 255, height, dtype=numpy.uint8)
    pixels = numpy.zeros((height, width, 3), dtype=numpy.uint8)
    pixels[:, :, 0] = x[numpy.newaxis, :]
    pixels[:, :, 1] = y[:, numpy.newaxis]
    pixels[:, :, 2] = numpy.random.default_rng(width * height).integers(
        96, 160, (height, width), dtype=numpy.uint8
    )
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_with_orientation(width: int, height: int, orientation: int) -> bytes:
    """A JPEG whose stored pixels are ``width`` x ``height``, left half red and
    right half blue, with EXIF ``Orientation`` = ``orientation``."""
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def ogg_vorbis_sine(seconds: float = 2.0, frequency: float = 440.0, rate: int = 44100) -> bytes:
    """A mono Ogg Vorbis file of a sine wave, encoded by libsndfile."""
    t = numpy.arange(int(seconds * rate)) / rate
    wave = 0.5 * numpy.sin(2 * numpy.pi * frequency * t)
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, rate, format="OGG", subtype="VORBIS")
    data: bytes = buffer.getvalue()
    return data


def pdf_document() -> bytes:
    """A one-page PDF (an image saved as PDF by Pillow)."""
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100), (240, 240, 240)).save(buffer, format="PDF")
    return buffer.getvalue()


def animated_gif(width: int, height: int, frames: int) -> bytes:
    """A looping GIF of ``frames`` frames of different solid colours."""
    colours = [RED, BLUE, (0, 160, 0), (255, 255, 0)]
    images = [Image.new("RGB", (width, height), colours[i % len(colours)]) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0
    )
    return buffer.getvalue()


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` black pixels: 900 million
    pixels (gigabytes once decoded) in a file of about a hundred kilobytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    # bit depth 1, colour type 0 (greyscale), deflate, adaptive filtering, no interlace
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the row's bits
    compressor = zlib.compressobj(9)
    rows_per_block = 1000
    parts = [compressor.compress(row * rows_per_block) for _ in range(height // rows_per_block)]
    parts.append(compressor.compress(row * (height % rows_per_block)))
    parts.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def open_image(data: bytes) -> Image.Image:
    """The image in ``data``, fully decoded (so a broken file fails here)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# -- servers -----------------------------------------------------------------------


@attrs.frozen
class MediaServer:
    """A running server and where it keeps its media."""

    process: ServerProcess
    backend: Backend
    media_store: Path
    s3: S3Server | None = None
    bucket: str | None = None

    def stored_object(self, key: str) -> bytes:
        """The bytes the S3 bucket holds under ``key`` (S3 backend only)."""
        assert self.s3 is not None and self.bucket is not None
        body: bytes = self.s3.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


@contextmanager
def database_for(engine: Engine, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A ``database:`` section for a new empty database (for fixtures that outlive
    one test, which the function-scoped ``database_config`` cannot serve)."""
    if engine == "sqlite":
        yield {"name": "sqlite3", "args": {"database": str(tmp_path / "homeserver.db")}}
        return
    with temporary_database() as args:
        yield {"name": "psycopg2", "args": {**args, "cp_min": 1, "cp_max": 4}}


def storage_settings(backend: Backend, s3: S3Server | None) -> tuple[dict[str, Any], str | None]:
    """The ``media_storage`` override for ``backend`` (a fresh bucket for S3), and
    that bucket's name."""
    if backend == "filesystem":
        return {}, None
    assert s3 is not None, "the S3 backend needs the s3_server fixture"
    bucket = unique_bucket_name()
    s3.create_bucket(bucket)
    return {"media_storage": media_storage_config(s3, bucket)}, bucket


@contextmanager
def running_media_server(
    tmp_path: Path,
    database: dict[str, Any],
    *,
    backend: Backend = "filesystem",
    s3: S3Server | None = None,
    **overrides: Any,
) -> Iterator[MediaServer]:
    """The real server (open registration, relaxed limits including the media ones)
    storing media with ``backend``."""
    storage, bucket = storage_settings(backend, s3)
    settings = {**RELAXED_MEDIA_LIMITS, **storage, **overrides}
    with running_server(tmp_path, database, **settings) as process:
        yield MediaServer(process, backend, tmp_path / "media", s3, bucket)


def new_user(server: ServerProcess, prefix: str = "user") -> dict[str, Any]:
    """A freshly registered account (a unique name, so fixtures can share servers)."""
    return register(server, f"{prefix}-{uuid.uuid4().hex[:10]}")


# -- requests ----------------------------------------------------------------------


def upload(
    server: ServerProcess,
    token: str | None,
    data: bytes,
    content_type: str | None = None,
    filename: str | None = None,
) -> Response:
    """``POST /_matrix/media/v3/upload``."""
    headers = auth(token) if token is not None else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    path = UPLOAD
    if filename is not None:
        path += "?" + urlencode({"filename": filename})
    return server.request("POST", path, body=data, headers=headers)


def uploaded(
    server: ServerProcess,
    token: str,
    data: bytes,
    content_type: str | None = None,
    filename: str | None = None,
) -> str:
    """Upload, which must succeed; the new media ID (on the server ``localhost``)."""
    response = upload(server, token, data, content_type, filename)
    assert response.status == 200, response.body
    content_uri: str = response.json()["content_uri"]
    assert content_uri.startswith("mxc://localhost/"), content_uri
    return content_uri.removeprefix("mxc://localhost/")


def media_path(kind: str, media_id: str, *rest: str, server_name: str = "localhost") -> str:
    """``/_matrix/client/v1/media/<kind>/<server>/<id>[/<rest>...]``, each part quoted."""
    parts = [server_name, media_id, *rest]
    return f"{MEDIA}/{kind}/" + "/".join(quote(part, safe="") for part in parts)


def download(
    server: ServerProcess,
    token: str | None,
    media_id: str,
    *,
    file_name: str | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    timeout: float = 10.0,
) -> Response:
    """``GET /_matrix/client/v1/media/download/localhost/{mediaId}[/{fileName}]``."""
    path = media_path("download", media_id, *([file_name] if file_name is not None else []))
    if query:
        path += "?" + urlencode(query)
    all_headers = {**(auth(token) if token is not None else {}), **(headers or {})}
    return server.request(method, path, headers=all_headers, timeout=timeout)


def thumbnail(
    server: ServerProcess,
    token: str | None,
    media_id: str,
    *,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> Response:
    """``GET /_matrix/client/v1/media/thumbnail/localhost/{mediaId}?<params>``."""
    path = media_path("thumbnail", media_id)
    if params:
        path += "?" + urlencode(
            {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
        )
    all_headers = {**(auth(token) if token is not None else {}), **(headers or {})}
    return server.request("GET", path, headers=all_headers, timeout=30.0)


def error_of(response: Response) -> tuple[int, str | None]:
    """(status, errcode) of a JSON error response."""
    try:
        errcode = response.json().get("errcode")
    except ValueError:
        errcode = None
    return response.status, errcode


# -- big uploads ---------------------------------------------------------------------


@attrs.frozen
class StreamedUpload:
    """What came of :func:`stream_upload`."""

    #: The response's status and body, if one could be read.
    status: int | None
    body: bytes
    headers: dict[str, str]
    #: Bytes of the body sent before the response arrived or the connection broke.
    sent: int
    #: The connection was reset (or closed) before any response could be read.
    reset: bool


def random_blocks(total: int, block_size: int = 1 << 20, seed: int = 0) -> Iterator[bytes]:
    """``total`` bytes of random-looking data in blocks: the same for the same seed."""
    generator = random.Random(seed)
    base = generator.randbytes(block_size)
    sent = 0
    index = 0
    while sent < total:
        # Vary each block cheaply so no two are alike.
        block = struct.pack(">Q", index) + base[8:]
        block = block[: total - sent]
        yield block
        sent += len(block)
        index += 1


def sha256_of(blocks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(block)
    return digest.hexdigest()


def stream_upload(
    server: ServerProcess,
    token: str,
    blocks: Iterable[bytes],
    *,
    content_length: int | None = None,
    content_type: str = "application/octet-stream",
    path: str = UPLOAD,
    method: str = "POST",
) -> StreamedUpload:
    """Send an upload from ``blocks`` over a raw socket: chunked when
    ``content_length`` is None, else with that ``Content-Length`` (whatever
    ``blocks`` add up to).  Before each block it looks for an answer, so a server
    that answers early and then closes is heard, and stops sending when the
    connection breaks."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        head = [
            f"{method} {path} HTTP/1.1",
            "Host: localhost",
            f"Authorization: Bearer {token}",
            f"Content-Type: {content_type}",
            "Transfer-Encoding: chunked"
            if content_length is None
            else f"Content-Length: {content_length}",
        ]
        sent = 0
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("ascii"))
            for block in blocks:
                if _readable(sock):
                    break
                if content_length is None:
                    sock.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
                else:
                    sock.sendall(block)
                sent += len(block)
            else:
                if content_length is None:
                    sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # reset or closed by the server: whatever it answered is read below
        return _read_answer(sock, sent)
    finally:
        sock.close()


def _readable(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _read_answer(sock: socket.socket, sent: int) -> StreamedUpload:
    reply = http.client.HTTPResponse(sock)
    try:
        reply.begin()
        body = reply.read()
    except (OSError, http.client.HTTPException):
        return StreamedUpload(None, b"", {}, sent, reset=True)
    headers = {name.lower(): value for name, value in reply.getheaders()}
    return StreamedUpload(reply.status, body, headers, sent, reset=False)


def peak_rss(pid: int) -> int:
    """The peak resident set size of process ``pid`` so far, in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")
