"""Uploads against the real server: the size limit (streamed bodies far past it are
refused without the server holding them in memory, and big accepted ones go to
disk as they arrive), ``/create`` and ``PUT /upload/{serverName}/{mediaId}`` with
downloads that wait for them, ``/config``, authentication, the deprecated
unauthenticated routes, rate limits and upload quotas, and media surviving a
restart.

Memory is measured as the server process's peak resident set size (``VmHWM`` in
/proc/<pid>/status) before and after, on a server of the test's own, so that no
other test's work is in its peak.

spec: client-server-api/modules/content_repo.md, data/api/client-server/
content-repo.yaml (``/upload``, ``/create``, the deprecated routes),
authed-content-repo.yaml (``/config``, ``/download``)
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.http import Response
from tests.support.matrix import auth
from tests.support.media_files import (
    CREATE,
    LEGACY_MEDIA,
    MEDIA,
    UPLOAD,
    MediaServer,
    database_for,
    download,
    error_of,
    new_user,
    peak_rss,
    png_image,
    random_blocks,
    running_media_server,
    sha256_of,
    stream_upload,
    thumbnail,
    upload,
    uploaded,
)
from tests.support.s3 import S3Server
from tests.support.server_process import ServerProcess

MB = 1024 * 1024
LIMIT = 8 * MB
#: Far more than the limit plus what the server reads and throws away past it.
HUGE = 200 * MB
#: The most a refused or streamed upload may add to the server's peak memory.
MEMORY_ALLOWANCE = 40 * MB


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    """One server for the tests that need no config of their own: 8 MiB uploads."""
    tmp_path = tmp_path_factory.mktemp("media-upload")
    with (
        database_for("sqlite", tmp_path) as database,
        running_media_server(tmp_path, database, max_upload_size="8M") as server,
    ):
        yield server


@pytest.fixture(scope="module")
def server(media: MediaServer) -> ServerProcess:
    return media.process


def create(server: ServerProcess, token: str) -> Response:
    return server.request("POST", CREATE, headers=auth(token))


def created_media_id(server: ServerProcess, token: str) -> str:
    response = create(server, token)
    assert response.status == 200, response.body
    content_uri: str = response.json()["content_uri"]
    return content_uri.removeprefix("mxc://localhost/")


def put_upload(
    server: ServerProcess,
    token: str,
    media_id: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    server_name: str = "localhost",
) -> Response:
    return server.request(
        "PUT",
        f"{UPLOAD}/{quote(server_name)}/{quote(media_id)}",
        body=data,
        headers={**auth(token), "Content-Type": content_type},
    )


def media_id_of(upload_response: bytes) -> str:
    content_uri: str = json.loads(upload_response)["content_uri"]
    assert content_uri.startswith("mxc://localhost/"), content_uri
    return content_uri.removeprefix("mxc://localhost/")


def error_of_body(body: bytes) -> str | None:
    value = json.loads(body).get("errcode")
    return value if isinstance(value, str) else None


def assert_still_serving(server: ServerProcess, token: str) -> None:
    """The server answers and still takes uploads."""
    assert server.request("GET", "/health").status == 200
    media_id = uploaded(server, token, b"still here", "text/plain")
    assert download(server, token, media_id).body == b"still here"


# -- the size limit ------------------------------------------------------------------


def test_media_config_reports_the_max_upload_size(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    response = server.request("GET", f"{MEDIA}/config", headers=auth(token))
    assert response.status == 200
    assert response.json() == {"m.upload.size": LIMIT}


def test_upload_of_exactly_the_limit_is_accepted(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    blocks = list(random_blocks(LIMIT, seed=1))
    result = stream_upload(server, token, blocks, content_length=LIMIT)
    assert result.status == 200, result.body
    media_id = media_id_of(result.body)
    fetched = download(server, token, media_id, timeout=30)
    assert fetched.status == 200
    assert sha256_of([fetched.body]) == sha256_of(blocks)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_upload_past_the_limit_is_refused_as_too_large(media: MediaServer, chunked: bool) -> None:
    """Within what the server reads past the limit to be able to answer, the
    answer is always a 413, whether the size was declared or only found out."""
    server = media.process
    token = new_user(server)["access_token"]
    size = LIMIT + 4 * MB
    result = stream_upload(
        server, token, random_blocks(size), content_length=None if chunked else size
    )
    assert result.status == 413, result
    assert error_of_body(result.body) == "M_TOO_LARGE"
    assert_still_serving(server, token)
    assert_no_temporary_files_remain(media)


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_huge_streamed_upload_is_refused_without_buffering_it(
    tmp_path: Path, chunked: bool
) -> None:
    """200 MB against an 8 MiB limit: the server answers 413 M_TOO_LARGE as soon
    as it knows (from the Content-Length, or when the chunks pass the limit), never
    holds the body, and goes on serving."""
    with (
        database_for("sqlite", tmp_path) as database,
        running_media_server(tmp_path, database, max_upload_size="8M") as media,
    ):
        server = media.process
        token = new_user(server)["access_token"]
        assert_still_serving(server, token)  # warm: the upload path has run
        before = peak_rss(server.pid)
        result = stream_upload(
            server, token, random_blocks(HUGE), content_length=None if chunked else HUGE
        )
        # The answer comes while the client is still sending, so it is heard.
        assert result.status == 413, result
        assert error_of_body(result.body) == "M_TOO_LARGE"
        assert result.sent < 24 * MB, "the answer came only long after the limit"
        grown = peak_rss(server.pid) - before
        assert grown < MEMORY_ALLOWANCE, f"peak RSS grew by {grown / MB:.1f} MiB"
        assert_still_serving(server, token)
        assert_no_temporary_files_remain(media)


def assert_no_temporary_files_remain(media: MediaServer) -> None:
    """The refused upload's spool file is removed (once its last write is done)."""
    temp = media.media_store / "tmp"
    deadline = time.monotonic() + 10
    while any(temp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(temp.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_large_upload_is_streamed_to_disk_and_downloads_identical(
    tmp_path: Path, chunked: bool
) -> None:
    size = 60 * MB
    with (
        database_for("sqlite", tmp_path) as database,
        running_media_server(tmp_path, database, max_upload_size="100M") as media,
    ):
        server = media.process
        token = new_user(server)["access_token"]
        assert_still_serving(server, token)
        before = peak_rss(server.pid)
        result = stream_upload(
            server, token, random_blocks(size, seed=7), content_length=None if chunked else size
        )
        assert result.status == 200, result
        grown = peak_rss(server.pid) - before
        assert grown < 30 * MB, f"peak RSS grew by {grown / MB:.1f} MiB for a 60 MiB upload"
        media_id = media_id_of(result.body)
        fetched = download(server, token, media_id, timeout=60)
        assert fetched.status == 200
        assert fetched.headers["content-length"] == str(size)
        assert sha256_of([fetched.body]) == sha256_of(random_blocks(size, seed=7))
        grown = peak_rss(server.pid) - before
        assert grown < 30 * MB, f"peak RSS grew by {grown / MB:.1f} MiB serving 60 MiB"


# -- /create and PUT /upload -----------------------------------------------------------


def test_create_returns_a_content_uri_and_when_it_expires(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    before = int(time.time() * 1000)
    response = create(server, token)
    assert response.status == 200, response.body
    body = response.json()
    assert body["content_uri"].startswith("mxc://localhost/")
    # Synapse's default: a day to upload.
    assert body["unused_expires_at"] > before + 23 * 3600 * 1000


def test_upload_to_a_created_id_is_then_downloadable(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    media_id = created_media_id(server, token)
    png = png_image(64, 48)
    response = put_upload(server, token, media_id, png, "image/png")
    assert (response.status, response.json()) == (200, {})
    fetched = download(server, token, media_id)
    assert fetched.status == 200
    assert fetched.body == png
    assert fetched.headers["content-type"] == "image/png"


def test_upload_to_a_media_id_created_by_someone_else_is_forbidden(
    server: ServerProcess,
) -> None:
    owner = new_user(server)["access_token"]
    intruder = new_user(server)["access_token"]
    media_id = created_media_id(server, owner)
    assert error_of(put_upload(server, intruder, media_id, b"mine now")) == (403, "M_FORBIDDEN")
    # The owner can still use it.
    assert put_upload(server, owner, media_id, b"the real one").status == 200
    assert download(server, owner, media_id).body == b"the real one"


def test_second_upload_to_a_created_id_cannot_overwrite_it(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    media_id = created_media_id(server, token)
    assert put_upload(server, token, media_id, b"first").status == 200
    response = put_upload(server, token, media_id, b"second")
    assert error_of(response) == (409, "M_CANNOT_OVERWRITE_MEDIA")
    assert download(server, token, media_id).body == b"first"


def test_upload_to_an_id_that_was_never_created_is_not_found(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    assert error_of(put_upload(server, token, "NeverCreated123", b"x")) == (404, "M_NOT_FOUND")
    media_id = created_media_id(server, token)
    other_server = put_upload(server, token, media_id, b"x", server_name="example.org")
    assert error_of(other_server) == (404, "M_NOT_FOUND")


def test_download_before_the_upload_is_not_yet_uploaded(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    media_id = created_media_id(server, token)
    response = download(server, token, media_id, query={"timeout_ms": "500"})
    assert error_of(response) == (504, "M_NOT_YET_UPLOADED")
    response = thumbnail(server, token, media_id, width=32, height=32, timeout_ms=500)
    assert error_of(response) == (504, "M_NOT_YET_UPLOADED")


def test_download_waiting_for_an_upload_gets_the_bytes(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    media_id = created_media_id(server, token)
    data = b"worth the wait" * 100
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            download, server, token, media_id, query={"timeout_ms": "10000"}, timeout=30
        )
        # Let the download reach the server and start waiting (it has 10 s).
        time.sleep(0.5)
        assert not waiting.done(), waiting.result()
        assert put_upload(server, token, media_id, data, "text/plain").status == 200
        response = waiting.result(timeout=30)
    assert response.status == 200, response.body
    assert response.body == data


def test_sixth_pending_create_is_limited_until_one_is_uploaded(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    pending = [created_media_id(server, token) for _ in range(5)]
    sixth = create(server, token)
    assert error_of(sixth) == (429, "M_LIMIT_EXCEEDED")
    # Another user is not held back by this one's pending uploads.
    assert create(server, new_user(server)["access_token"]).status == 200
    assert put_upload(server, token, pending[0], b"done").status == 200
    assert create(server, token).status == 200


def test_max_pending_media_uploads_is_configurable(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_media_server(tmp_path, database_config, max_pending_media_uploads=2) as media:
        token = new_user(media.process)["access_token"]
        assert create(media.process, token).status == 200
        assert create(media.process, token).status == 200
        assert error_of(create(media.process, token)) == (429, "M_LIMIT_EXCEEDED")


# -- authentication and the deprecated routes ------------------------------------------


def test_media_routes_need_an_access_token(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    media_id = uploaded(server, token, png_image(40, 40), "image/png")
    requests = {
        "config": ("GET", f"{MEDIA}/config"),
        "download": ("GET", f"{MEDIA}/download/localhost/{media_id}"),
        "named download": ("GET", f"{MEDIA}/download/localhost/{media_id}/a.png"),
        "thumbnail": ("GET", f"{MEDIA}/thumbnail/localhost/{media_id}?width=32&height=32"),
        "upload": ("POST", UPLOAD),
        "create": ("POST", CREATE),
    }
    for what, (method, path) in requests.items():
        body = b"data" if method == "POST" else None
        response = server.request(method, path, body=body)
        assert error_of(response) == (401, "M_MISSING_TOKEN"), what
        wrong = server.request(method, path, body=body, headers=auth("not-a-token"))
        assert error_of(wrong) == (401, "M_UNKNOWN_TOKEN"), what


def test_legacy_download_is_unrecognized_when_authenticated_media_is_on(
    server: ServerProcess,
) -> None:
    token = new_user(server)["access_token"]
    media_id = uploaded(server, token, b"hello", "text/plain")
    for path in (
        f"{LEGACY_MEDIA}/download/localhost/{media_id}",
        f"{LEGACY_MEDIA}/thumbnail/localhost/{media_id}?width=32&height=32",
        f"{LEGACY_MEDIA}/config",
    ):
        assert error_of(server.request("GET", path)) == (404, "M_UNRECOGNIZED"), path
        with_token = server.request("GET", path, headers=auth(token))
        assert error_of(with_token) == (404, "M_UNRECOGNIZED"), path


def test_legacy_download_works_without_a_token_when_authenticated_media_is_off(
    tmp_path: Path,
) -> None:
    with (
        database_for("sqlite", tmp_path) as database,
        running_media_server(tmp_path, database, enable_authenticated_media=False) as media,
    ):
        server = media.process
        token = new_user(server)["access_token"]
        png = png_image(300, 200)
        media_id = uploaded(server, token, png, "image/png", "legacy.png")
        response = server.request("GET", f"{LEGACY_MEDIA}/download/localhost/{media_id}")
        assert response.status == 200, response.body
        assert response.body == png
        assert response.headers["content-disposition"] == 'inline; filename="legacy.png"'
        thumb = server.request(
            "GET", f"{LEGACY_MEDIA}/thumbnail/localhost/{media_id}?width=32&height=32&method=crop"
        )
        assert thumb.status == 200
        assert thumb.headers["content-type"] in ("image/jpeg", "image/png")
        # The authenticated routes still need their token.
        assert error_of(download(server, None, media_id)) == (401, "M_MISSING_TOKEN")
        assert download(server, token, media_id).body == png


# -- what an upload may say ------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["image", "/png", "image/png/x", "im age/png", "image/", "(x)/y"]
)
def test_upload_with_an_invalid_content_type_is_refused(
    server: ServerProcess, content_type: str
) -> None:
    token = new_user(server)["access_token"]
    response = upload(server, token, png_image(8, 8), content_type)
    assert error_of(response) == (400, "M_INVALID_PARAM"), response.body


def test_empty_upload_is_an_empty_file(server: ServerProcess) -> None:
    token = new_user(server)["access_token"]
    media_id = uploaded(server, token, b"", "text/plain", "empty.txt")
    response = download(server, token, media_id)
    assert response.status == 200
    assert response.body == b""
    assert response.headers["content-length"] == "0"


# -- rate limits and quotas ------------------------------------------------------------


def test_uploads_past_the_rate_limit_are_refused(tmp_path: Path) -> None:
    with (
        database_for("sqlite", tmp_path) as database,
        running_media_server(
            tmp_path, database, rc_media_upload={"per_second": 0.1, "burst_count": 2}
        ) as media,
    ):
        server = media.process
        alice = new_user(server)["access_token"]
        assert upload(server, alice, b"one", "text/plain").status == 200
        assert upload(server, alice, b"two", "text/plain").status == 200
        third = upload(server, alice, b"three", "text/plain")
        assert error_of(third) == (429, "M_LIMIT_EXCEEDED")
        assert third.json()["retry_after_ms"] > 0
        # Per user: someone else still can.
        assert upload(server, new_user(server)["access_token"], b"x", "text/plain").status == 200


def test_uploads_past_the_quota_for_the_period_are_forbidden(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    limits = [{"time_period": "1h", "max_size": "1M"}]
    with running_media_server(tmp_path, database_config, media_upload_limits=limits) as media:
        server = media.process
        alice = new_user(server)["access_token"]
        chunk = bytes(600 * 1024)
        assert upload(server, alice, chunk).status == 200
        over = upload(server, alice, chunk)
        assert error_of(over) == (403, "M_FORBIDDEN")
        # What is left of the quota can still be used, and others have their own.
        assert upload(server, alice, bytes(300 * 1024)).status == 200
        assert upload(server, new_user(server)["access_token"], chunk).status == 200


# -- durability ------------------------------------------------------------------------


def test_uploads_survive_a_restart(tmp_path: Path, database_config: dict[str, Any]) -> None:
    with running_media_server(tmp_path, database_config) as media:
        server = media.process
        token = new_user(server)["access_token"]
        png = png_image(500, 400)
        media_id = uploaded(server, token, png, "image/png", "kept.png")
        thumb_before = thumbnail(server, token, media_id, width=96, height=96, method="crop")
        assert thumb_before.status == 200
        server.stop()
        server.start()
        response = download(server, token, media_id)
        assert response.status == 200
        assert response.body == png
        assert response.headers["content-disposition"] == 'inline; filename="kept.png"'
        thumb_after = thumbnail(server, token, media_id, width=96, height=96, method="crop")
        assert thumb_after.status == 200
        assert thumb_after.body == thumb_before.body


def test_s3_media_are_fetched_from_the_bucket_when_not_cached(
    tmp_path: Path, database_config: dict[str, Any], s3_server: S3Server
) -> None:
    """With S3, ``media_store_path`` is only a cache: emptied (or lost with the
    machine), every file comes back from the bucket."""
    with running_media_server(tmp_path, database_config, backend="s3", s3=s3_server) as media:
        server = media.process
        token = new_user(server)["access_token"]
        png = png_image(400, 300)
        media_id = uploaded(server, token, png, "image/png")
        thumb = thumbnail(server, token, media_id, width=32, height=32, method="crop")
        assert thumb.status == 200
        server.stop()
        cached = [path.name for path in media.media_store.rglob("*") if path.is_file()]
        assert media_id[4:] in cached, cached
        shutil.rmtree(media.media_store)
        server.start()
        response = download(server, token, media_id)
        assert response.status == 200
        assert response.body == png
        again = thumbnail(server, token, media_id, width=32, height=32, method="crop")
        assert again.status == 200
        assert again.body == thumb.body
