"""Downloads and thumbnails against the real server, beyond the core of
test_media.py: hostile and malformed media IDs, unknown media, file names in
``Content-Disposition``, bad thumbnail parameters, animated thumbnails, and an
image bomb that must not take the server down.

spec: client-server-api/modules/content_repo.md (#serving-inline-content,
#thumbnails, #content-repo-security-considerations), data/api/client-server/
authed-content-repo.yaml
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from PIL import Image

from tests.support.http import Response
from tests.support.matrix import auth
from tests.support.media_files import (
    MEDIA,
    UPLOAD,
    animated_gif,
    database_for,
    download,
    error_of,
    new_user,
    open_image,
    pdf_document,
    png_bomb,
    png_image,
    running_media_server,
    thumbnail,
    upload,
    uploaded,
)
from tests.support.server_process import ServerProcess

PNG = png_image(400, 300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module (filesystem, SQLite): nothing here depends on them."""
    tmp_path = tmp_path_factory.mktemp("media-serving")
    with (
        database_for("sqlite", tmp_path) as database,
        running_media_server(tmp_path, database) as media,
    ):
        yield media.process


@pytest.fixture(scope="module")
def token(server: ServerProcess) -> str:
    access_token: str = new_user(server, "viewer")["access_token"]
    return access_token


@pytest.fixture(scope="module")
def png_id(server: ServerProcess, token: str) -> str:
    return uploaded(server, token, PNG, "image/png", "picture.png")


# -- hostile and unknown IDs -----------------------------------------------------------

#: Media IDs are [A-Za-z0-9_-]; each of these reaches the handler as one path segment.
INVALID_MEDIA_IDS = [
    "..",
    "%2E%2E",
    "..%2F..%2Fhomeserver.yaml",
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2Fetc%2Fpasswd",
    "a.b",
    "a%20b",
    "caf%C3%A9",
    "id%3Bx",
    "%5C..%5C..%5Chomeserver.yaml",
    "x" * 256,
]


@pytest.mark.parametrize("media_id", INVALID_MEDIA_IDS)
def test_invalid_media_id_is_not_found(server: ServerProcess, token: str, media_id: str) -> None:
    for kind, query in (("download", ""), ("thumbnail", "?width=32&height=32")):
        response = server.request(
            "GET", f"{MEDIA}/{kind}/localhost/{media_id}{query}", headers=auth(token)
        )
        assert error_of(response) == (404, "M_NOT_FOUND"), (kind, response.body)
    named = server.request(
        "GET", f"{MEDIA}/download/localhost/{media_id}/name.txt", headers=auth(token)
    )
    assert error_of(named) == (404, "M_NOT_FOUND")
    put = server.request("PUT", f"{UPLOAD}/localhost/{media_id}", body=b"x", headers=auth(token))
    assert error_of(put) == (404, "M_NOT_FOUND")


# ("..", all dots, fits the spec's loose dns-name grammar: it is a remote server name.)
@pytest.mark.parametrize("server_name", ["..%2F..", "local%20host", "%2Fetc", "a_b"])
def test_invalid_server_name_is_not_found(
    server: ServerProcess, token: str, png_id: str, server_name: str
) -> None:
    response = server.request(
        "GET", f"{MEDIA}/download/{server_name}/{png_id}", headers=auth(token)
    )
    assert error_of(response) == (404, "M_NOT_FOUND"), response.body


def test_dot_segments_in_the_path_do_not_reach_a_file(server: ServerProcess, token: str) -> None:
    # Not one media ID: the route does not match at all, which is still a 404.
    for path in (
        f"{MEDIA}/download/localhost/../../../homeserver.yaml",
        f"{MEDIA}/download/localhost/media/../../homeserver.yaml",
        f"{MEDIA}/thumbnail/../../homeserver.yaml?width=1&height=1",
    ):
        response = server.request("GET", path, headers=auth(token))
        assert response.status == 404, (path, response.status)
        assert response.json()["errcode"] in ("M_NOT_FOUND", "M_UNRECOGNIZED"), path
        assert b"server_name" not in response.body
    assert server.request("GET", "/health").status == 200


def test_nul_in_a_media_path_is_a_bad_request(server: ServerProcess, token: str) -> None:
    for path in (f"{MEDIA}/download/localhost/a%00b", f"{MEDIA}/download/local%00host/abc"):
        response = server.request("GET", path, headers=auth(token))
        assert error_of(response) == (400, "M_INVALID_PARAM"), path


def test_unknown_media_is_not_found(server: ServerProcess, token: str) -> None:
    assert error_of(download(server, token, "NoSuchMedia0123456789abc")) == (404, "M_NOT_FOUND")
    response = thumbnail(server, token, "NoSuchMedia0123456789abc", width=32, height=32)
    assert error_of(response) == (404, "M_NOT_FOUND")


def test_remote_media_with_allow_remote_false_is_not_found(
    server: ServerProcess, token: str
) -> None:
    response = server.request(
        "GET",
        f"{MEDIA}/download/remote.example/SomeMedia123?allow_remote=false",
        headers=auth(token),
    )
    assert error_of(response) == (404, "M_NOT_FOUND")


# -- file names ------------------------------------------------------------------------


def filename_in(response: Response) -> str | None:
    """The file name in Content-Disposition, whichever form it is in."""
    for part in response.headers["content-disposition"].split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name == "filename*":
            charset, _, encoded = value.partition("''")
            assert charset.lower() == "utf-8", value
            return unquote(encoded, errors="strict")
        if name == "filename":
            assert value.startswith('"') and value.endswith('"'), value
            return value[1:-1]
    return None


def test_ascii_upload_name_is_a_plain_filename(server: ServerProcess, token: str) -> None:
    media_id = uploaded(server, token, PNG, "image/png", "holiday photo.png")
    response = download(server, token, media_id)
    assert response.headers["content-disposition"] == 'inline; filename="holiday photo.png"'


@pytest.mark.parametrize("name", ["café ☕.png", "写真.png", "naïve résumé.pdf"])
def test_non_ascii_upload_name_is_an_encoded_filename(
    server: ServerProcess, token: str, name: str
) -> None:
    media_id = uploaded(server, token, PNG, "image/png", name)
    response = download(server, token, media_id)
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("inline; filename*=utf-8''"), disposition
    assert disposition.isascii()
    assert filename_in(response) == name


def test_upload_name_with_a_quote_is_returned_intact(server: ServerProcess, token: str) -> None:
    name = 'say "hi"; now.txt'
    media_id = uploaded(server, token, b"hi", "text/plain", name)
    response = download(server, token, media_id)
    assert filename_in(response) == name
    # Whatever the form, the quote cannot end the parameter early.
    assert response.headers["content-disposition"].count('"') in (0, 2)


def test_download_file_name_overrides_the_upload_name(
    server: ServerProcess, token: str, png_id: str
) -> None:
    response = download(server, token, png_id, file_name="renamed.png")
    assert response.status == 200
    assert response.body == PNG
    assert response.headers["content-disposition"] == 'inline; filename="renamed.png"'
    non_ascii = download(server, token, png_id, file_name="übersicht.png")
    assert non_ascii.headers["content-disposition"].startswith("inline; filename*=utf-8''")
    assert filename_in(non_ascii) == "übersicht.png"
    # And without one, the upload name is used.
    assert filename_in(download(server, token, png_id)) == "picture.png"


def test_media_uploaded_without_a_name_has_no_filename(server: ServerProcess, token: str) -> None:
    pdf = pdf_document()
    media_id = uploaded(server, token, pdf, "application/pdf")
    response = download(server, token, media_id)
    assert response.headers["content-disposition"] == "attachment"
    assert response.body == pdf


# -- thumbnail parameters --------------------------------------------------------------


@pytest.mark.parametrize("missing", ["width", "height"])
def test_thumbnail_without_a_dimension_is_a_missing_param(
    server: ServerProcess, token: str, png_id: str, missing: str
) -> None:
    params: dict[str, Any] = {"width": 32, "height": 32}
    del params[missing]
    response = thumbnail(server, token, png_id, **params)
    assert error_of(response) == (400, "M_MISSING_PARAM")


@pytest.mark.parametrize(
    "params",
    [
        {"width": 32, "height": 32, "method": "foo"},
        {"width": -32, "height": 32},
        {"width": 32, "height": -1},
        {"width": 0, "height": 32},
        {"width": "abc", "height": 32},
        {"width": 32.5, "height": 32},
        {"width": 32, "height": 32, "animated": "maybe"},
        {"width": 32, "height": 32, "timeout_ms": -1},
    ],
    ids=[
        "method",
        "negative-width",
        "negative-height",
        "zero",
        "text",
        "float",
        "animated",
        "timeout",
    ],
)
def test_thumbnail_with_a_bad_parameter_is_a_bad_request(
    server: ServerProcess, token: str, png_id: str, params: dict[str, Any]
) -> None:
    response = thumbnail(server, token, png_id, **params)
    assert error_of(response) == (400, "M_INVALID_PARAM"), response.body


# -- animation -------------------------------------------------------------------------


def test_animated_thumbnail_of_an_animated_gif_is_animated(
    server: ServerProcess, token: str
) -> None:
    gif = animated_gif(200, 200, frames=4)
    media_id = uploaded(server, token, gif, "image/gif", "spinner.gif")
    response = thumbnail(server, token, media_id, width=96, height=96, method="crop", animated=True)
    assert response.status == 200, response.body
    assert response.headers["content-type"] in ("image/webp", "image/gif")
    image = open_image(response.body)
    assert image.size == (96, 96)
    assert getattr(image, "n_frames", 1) > 1
    assert Image.MIME[image.format or ""] == response.headers["content-type"]


def test_still_thumbnail_of_an_animated_gif_is_one_frame(server: ServerProcess, token: str) -> None:
    gif = animated_gif(200, 200, frames=4)
    media_id = uploaded(server, token, gif, "image/gif")
    variants: list[dict[str, Any]] = [{}, {"animated": False}]
    for params in variants:
        response = thumbnail(server, token, media_id, width=96, height=96, method="crop", **params)
        assert response.status == 200, response.body
        image = open_image(response.body)
        assert image.size == (96, 96)
        assert getattr(image, "n_frames", 1) == 1, params


def test_animated_thumbnail_of_a_still_image_is_a_still(
    server: ServerProcess, token: str, png_id: str
) -> None:
    response = thumbnail(server, token, png_id, width=96, height=96, method="crop", animated=True)
    assert response.status == 200
    image = open_image(response.body)
    assert image.size == (96, 96)
    assert getattr(image, "n_frames", 1) == 1


# -- hostile images --------------------------------------------------------------------


def test_image_bomb_uploads_but_is_too_large_to_thumbnail(
    server: ServerProcess, token: str, png_id: str
) -> None:
    bomb = png_bomb(30_000, 30_000)
    assert len(bomb) < 1024 * 1024
    assert bomb[12:16] == b"IHDR" and struct.unpack(">II", bomb[16:24]) == (30_000, 30_000)
    media_id = uploaded(server, token, bomb, "image/png", "bomb.png")
    for method in ("crop", "scale"):
        response = thumbnail(server, token, media_id, width=320, height=240, method=method)
        assert error_of(response) == (413, "M_TOO_LARGE"), method
    # The bytes themselves are still served, as uploaded.
    assert download(server, token, media_id).body == bomb
    # And the server is none the worse.
    assert server.request("GET", "/health").status == 200
    assert thumbnail(server, token, png_id, width=32, height=32, method="crop").status == 200


def test_corrupt_image_is_refused_as_a_thumbnail(
    server: ServerProcess, token: str, png_id: str
) -> None:
    broken = PNG[:200] + bytes(2000)
    media_id = uploaded(server, token, broken, "image/png")
    response = thumbnail(server, token, media_id, width=32, height=32, method="crop")
    assert error_of(response) == (400, "M_UNKNOWN")
    assert thumbnail(server, token, png_id, width=32, height=32, method="crop").status == 200


def test_upload_without_a_content_type_is_recognised_by_its_bytes(
    server: ServerProcess, token: str
) -> None:
    response = upload(server, token, PNG)
    assert response.status == 200
    media_id = response.json()["content_uri"].removeprefix("mxc://localhost/")
    fetched = download(server, token, media_id)
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.headers["content-disposition"] == "inline"
