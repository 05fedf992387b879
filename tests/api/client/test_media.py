"""The content repository's core, against the real server on both storage backends
(the filesystem, and S3 on moto's server) and both database engines: matrix-nio
uploads and downloads real files byte-identical; thumbnails are valid, correctly
sized, never upscaled and upright; range requests seek in an audio file; and every
file is served with the disposition and the headers that keep it from running as a
page on the server's origin.

matrix-nio 0.26 uploads with ``POST /_matrix/media/v3/upload`` and downloads with
the authenticated ``GET /_matrix/client/v1/media/download`` (its access token in the
query string), so the download it makes is the one the spec recommends.

One server per backend and engine serves the whole module; each test registers
its own user.

spec: client-server-api/modules/content_repo.md, data/api/client-server/
content-repo.yaml (upload), authed-content-repo.yaml (download, thumbnail)
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import pytest
from nio import MemoryDownloadResponse, UploadResponse
from PIL import Image, ImageOps

from tests.support.http import Response
from tests.support.media_files import (
    BLUE,
    HTML_PAGE,
    RED,
    Backend,
    Engine,
    MediaServer,
    database_for,
    download,
    error_of,
    jpeg_with_orientation,
    new_user,
    ogg_vorbis_sine,
    open_image,
    pdf_document,
    png_image,
    running_media_server,
    thumbnail,
    uploaded,
)
from tests.support.nio_client import logged_in, run

VARIANTS: list[tuple[Backend, Engine]] = [
    ("filesystem", "sqlite"),
    ("filesystem", "postgres"),
    ("s3", "sqlite"),
    ("s3", "postgres"),
]

PNG = png_image(640, 480)
#: Stored 800 wide and 400 high; shown (orientation 6: turn 90° clockwise) 400 x 800.
ROTATED_JPEG = jpeg_with_orientation(800, 400, orientation=6)
OGG = ogg_vorbis_sine(seconds=2.0)
PDF = pdf_document()
SMALL_PNG = png_image(20, 16)

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "cross-origin-resource-policy": "cross-origin",
}


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda variant: "-".join(variant))
def media(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MediaServer]:
    backend, engine = request.param
    s3 = request.getfixturevalue("s3_server") if backend == "s3" else None
    tmp_path = tmp_path_factory.mktemp(f"media-{backend}-{engine}")
    with (
        database_for(engine, tmp_path) as database,
        running_media_server(tmp_path, database, backend=backend, s3=s3) as server,
    ):
        yield server


@attrs.frozen
class Library:
    """Files uploaded once per server, by ``token``'s user."""

    token: str
    png: str
    jpeg: str
    ogg: str
    pdf: str
    html: str
    html_as_png: str
    small_png: str


@pytest.fixture(scope="module")
def library(media: MediaServer) -> Library:
    server = media.process
    token = new_user(server, "librarian")["access_token"]
    return Library(
        token=token,
        png=uploaded(server, token, PNG, "image/png", "picture.png"),
        jpeg=uploaded(server, token, ROTATED_JPEG, "image/jpeg", "photo.jpg"),
        ogg=uploaded(server, token, OGG, "audio/ogg", "tone.ogg"),
        pdf=uploaded(server, token, PDF, "application/pdf", "paper.pdf"),
        html=uploaded(server, token, HTML_PAGE, "text/html", "page.html"),
        html_as_png=uploaded(server, token, HTML_PAGE, "image/png", "innocent.png"),
        small_png=uploaded(server, token, SMALL_PNG, "image/png", "tiny.png"),
    )


def ok(response: Response) -> Response:
    assert response.status == 200, (response.status, response.body[:300])
    return response


def assert_security_headers(response: Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    policy = response.headers.get("content-security-policy", "")
    assert "sandbox" in [part.strip() for part in policy.split(";")], policy
    assert response.headers.get("accept-ranges") == "bytes", response.headers


def disposition_type(response: Response) -> str:
    return response.headers["content-disposition"].split(";")[0].strip()


# -- a real client round trip --------------------------------------------------------


def test_real_client_uploads_and_downloads_files_byte_identical(media: MediaServer) -> None:
    account = new_user(media.process, "nio")
    files = [
        ("picture.png", "image/png", PNG),
        ("photo.jpg", "image/jpeg", ROTATED_JPEG),
        ("tone.ogg", "audio/ogg", OGG),
        ("paper.pdf", "application/pdf", PDF),
    ]

    async def scenario() -> list[tuple[str, Any]]:
        results: list[tuple[str, Any]] = []
        async with logged_in(media.process, account) as client:
            for name, content_type, data in files:
                response, _ = await client.upload(
                    io.BytesIO(data), content_type=content_type, filename=name, filesize=len(data)
                )
                assert isinstance(response, UploadResponse), response
                results.append((response.content_uri, await client.download(response.content_uri)))
        return results

    for (name, content_type, data), (content_uri, fetched) in zip(
        files, run(scenario()), strict=True
    ):
        assert isinstance(fetched, MemoryDownloadResponse), (name, fetched)
        assert fetched.body == data, name
        assert fetched.content_type == content_type, name
        assert fetched.filename == name
        if media.backend == "s3":
            media_id = content_uri.removeprefix("mxc://localhost/")
            key = f"local_content/{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}"
            assert media.stored_object(key) == data, f"{name} is not in the bucket"


def test_concurrent_downloads_of_one_file_are_all_complete(
    media: MediaServer, library: Library
) -> None:
    def one(_: int) -> bytes:
        return ok(download(media.process, library.token, library.ogg)).body

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(8))) == [OGG] * 8


# -- thumbnails ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 96])
def test_crop_thumbnail_has_exactly_the_preset_size(
    media: MediaServer, library: Library, size: int
) -> None:
    response = ok(
        thumbnail(media.process, library.token, library.png, width=size, height=size, method="crop")
    )
    image = open_image(response.body)
    assert image.size == (size, size)
    assert response.headers["content-type"] == Image.MIME[image.format or ""]
    assert len(response.body) < len(PNG)
    assert_security_headers(response)
    assert disposition_type(response) == "inline"


@pytest.mark.parametrize(("width", "height"), [(100, 100), (320, 240), (500, 300)])
def test_scale_thumbnail_keeps_the_aspect_ratio_and_covers_the_request(
    media: MediaServer, library: Library, width: int, height: int
) -> None:
    response = ok(
        thumbnail(
            media.process, library.token, library.png, width=width, height=height, method="scale"
        )
    )
    image = open_image(response.body)
    got_width, got_height = image.size
    # Never smaller than asked for (the image is bigger), never bigger than the image.
    assert width <= got_width <= 640 and height <= got_height <= 480, image.size
    # 640 x 480 is 4:3; rounding may cost a pixel.
    assert abs(got_width * 3 - got_height * 4) <= 4, image.size
    assert len(response.body) < len(PNG)


@pytest.mark.parametrize(
    ("width", "height", "method"), [(640, 480, "scale"), (800, 600, "scale"), (1000, 900, "crop")]
)
def test_thumbnail_no_smaller_than_the_image_is_the_original(
    media: MediaServer, library: Library, width: int, height: int, method: str
) -> None:
    response = ok(
        thumbnail(
            media.process, library.token, library.png, width=width, height=height, method=method
        )
    )
    assert response.body == PNG
    assert response.headers["content-type"] == "image/png"


def test_thumbnail_of_an_image_smaller_than_every_preset_is_the_original(
    media: MediaServer, library: Library
) -> None:
    for method in ("crop", "scale"):
        response = ok(
            thumbnail(
                media.process, library.token, library.small_png, width=32, height=32, method=method
            )
        )
        assert response.body == SMALL_PNG, method


def test_thumbnail_of_an_exif_rotated_jpeg_is_upright(media: MediaServer, library: Library) -> None:
    raw = Image.open(io.BytesIO(ROTATED_JPEG))
    assert raw.size == (800, 400)
    upright = ImageOps.exif_transpose(raw)
    assert upright.size == (400, 800)
    response = ok(
        thumbnail(media.process, library.token, library.jpeg, width=320, height=240, method="scale")
    )
    image = open_image(response.body).convert("RGB")
    width, height = image.size
    assert height > width, "the thumbnail is not upright: its dimensions are the raw pixels'"
    assert (width, height) == (120, 240)
    # The picture turned with it: the top and bottom are the colours they are upright.
    for y_fraction in (0.15, 0.85):
        expected = upright.getpixel((200, int(800 * y_fraction)))
        got = image.getpixel((width // 2, int(height * y_fraction)))
        assert isinstance(expected, tuple) and isinstance(got, tuple)
        assert _close(got, expected), (y_fraction, got, expected)
    assert {_nearest(upright.getpixel((200, 50))), _nearest(upright.getpixel((200, 750)))} == {
        "red",
        "blue",
    }
    # Thumbnails carry no metadata: nothing left for a viewer to rotate again.
    assert open_image(response.body).getexif().get(0x0112) in (None, 1)


def _close(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return all(abs(int(x) - int(y)) <= 48 for x, y in zip(a[:3], b[:3], strict=True))


def _nearest(pixel: Any) -> str:
    return "red" if _close(pixel, RED) else "blue" if _close(pixel, BLUE) else repr(pixel)


def test_thumbnail_of_a_pdf_is_refused(media: MediaServer, library: Library) -> None:
    response = thumbnail(media.process, library.token, library.pdf, width=96, height=96)
    assert error_of(response) == (400, "M_UNKNOWN")


# -- ranges --------------------------------------------------------------------------


def test_range_request_seeks_in_the_audio(media: MediaServer, library: Library) -> None:
    response = download(
        media.process, library.token, library.ogg, headers={"Range": "bytes=1000-1999"}
    )
    assert response.status == 206, response.body[:200]
    assert response.headers["content-range"] == f"bytes 1000-1999/{len(OGG)}"
    assert response.headers["content-length"] == "1000"
    assert response.body == OGG[1000:2000]
    assert response.headers["content-type"] == "audio/ogg"
    assert_security_headers(response)


def test_open_ended_range_runs_to_the_end(media: MediaServer, library: Library) -> None:
    start = len(OGG) - 1234
    response = download(
        media.process, library.token, library.ogg, headers={"Range": f"bytes={start}-"}
    )
    assert response.status == 206
    assert response.headers["content-range"] == f"bytes {start}-{len(OGG) - 1}/{len(OGG)}"
    assert response.body == OGG[start:]


def test_suffix_range_returns_the_last_bytes(media: MediaServer, library: Library) -> None:
    response = download(media.process, library.token, library.ogg, headers={"Range": "bytes=-500"})
    assert response.status == 206
    assert response.headers["content-range"] == (
        f"bytes {len(OGG) - 500}-{len(OGG) - 1}/{len(OGG)}"
    )
    assert response.body == OGG[-500:]


def test_unsatisfiable_range_is_416_with_the_size(media: MediaServer, library: Library) -> None:
    response = download(
        media.process,
        library.token,
        library.ogg,
        headers={"Range": f"bytes={len(OGG)}-{len(OGG) + 100}"},
    )
    assert response.status == 416
    assert response.headers["content-range"] == f"bytes */{len(OGG)}"
    assert response.body == b""


def test_file_responses_advertise_byte_ranges(media: MediaServer, library: Library) -> None:
    response = ok(download(media.process, library.token, library.ogg))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.body == OGG


# -- disposition and security headers ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("png", "image/png"), ("jpeg", "image/jpeg"), ("ogg", "audio/ogg")],
)
def test_images_and_audio_are_served_inline(
    media: MediaServer, library: Library, name: str, content_type: str
) -> None:
    response = ok(download(media.process, library.token, getattr(library, name)))
    assert disposition_type(response) == "inline"
    assert response.headers["content-type"] == content_type
    assert_security_headers(response)


def test_pdf_is_served_as_attachment(media: MediaServer, library: Library) -> None:
    response = ok(download(media.process, library.token, library.pdf))
    assert response.body == PDF
    assert disposition_type(response) == "attachment"
    assert response.headers["content-disposition"] == 'attachment; filename="paper.pdf"'
    assert response.headers["content-type"] == "application/pdf"
    assert_security_headers(response)


def test_html_upload_is_served_as_attachment(media: MediaServer, library: Library) -> None:
    response = ok(download(media.process, library.token, library.html))
    assert response.body == HTML_PAGE
    assert disposition_type(response) == "attachment"
    assert response.headers["content-type"].startswith("text/html")
    assert_security_headers(response)


def test_html_uploaded_as_png_is_recorded_as_octet_stream_and_served_as_attachment(
    media: MediaServer, library: Library
) -> None:
    response = ok(download(media.process, library.token, library.html_as_png))
    assert response.body == HTML_PAGE
    assert response.headers["content-type"] == "application/octet-stream"
    assert disposition_type(response) == "attachment"
    assert_security_headers(response)
    # Nor is it an image to make thumbnails of.
    refused = thumbnail(media.process, library.token, library.html_as_png, width=32, height=32)
    assert refused.status == 400


def test_every_kind_of_file_response_carries_the_security_headers(
    media: MediaServer, library: Library
) -> None:
    token = library.token
    responses = {
        "download": download(media.process, token, library.png),
        "named download": download(media.process, token, library.pdf, file_name="x.pdf"),
        "range": download(media.process, token, library.ogg, headers={"Range": "bytes=0-9"}),
        "head": download(media.process, token, library.html, method="HEAD"),
        "thumbnail": thumbnail(media.process, token, library.png, width=96, height=96),
        "original as thumbnail": thumbnail(
            media.process, token, library.small_png, width=96, height=96
        ),
    }
    for what, response in responses.items():
        assert response.status in (200, 206), (what, response.status, response.body[:200])
        assert_security_headers(response)
        assert "content-disposition" in response.headers, what


# -- validators and HEAD -------------------------------------------------------------


def test_etag_makes_a_repeated_download_not_modified(media: MediaServer, library: Library) -> None:
    first = ok(download(media.process, library.token, library.png))
    etag = first.headers["etag"]
    again = download(media.process, library.token, library.png, headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.body == b""
    other = download(
        media.process, library.token, library.png, headers={"If-None-Match": '"something-else"'}
    )
    assert other.status == 200 and other.body == PNG


def test_head_returns_the_headers_without_the_body(media: MediaServer, library: Library) -> None:
    response = download(media.process, library.token, library.pdf, method="HEAD")
    assert response.status == 200
    assert response.body == b""
    assert response.headers["content-length"] == str(len(PDF))
    assert response.headers["content-type"] == "application/pdf"
    assert disposition_type(response) == "attachment"
