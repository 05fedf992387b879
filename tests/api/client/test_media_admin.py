"""Media administration through Synapse's admin API, against the real server:
quarantine and release, delete (the bytes leave the media store), listing a
user's uploads page by page, purging the remote media cache, and only server
admins may do any of it.

One server (filesystem storage, so the test can look at ``media_store_path``)
serves the module; admins are made with shared-secret registration.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.accounts import register_with_secret
from tests.support.http import Response
from tests.support.matrix import auth
from tests.support.media_files import (
    ADMIN,
    MediaServer,
    database_for,
    download,
    error_of,
    new_user,
    png_image,
    running_media_server,
    thumbnail,
    uploaded,
)
from tests.support.server_process import ServerProcess

PNG = png_image(1000, 800)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    tmp_path = tmp_path_factory.mktemp("media-admin")
    with (
        database_for("sqlite", tmp_path) as database,
        running_media_server(tmp_path, database) as server,
    ):
        yield server


@pytest.fixture(scope="module")
def server(media: MediaServer) -> ServerProcess:
    return media.process


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> str:
    response = register_with_secret(server, f"admin-{uuid.uuid4().hex[:8]}", admin=True)
    assert response.status == 200, response.body
    token: str = response.json()["access_token"]
    return token


def admin_call(server: ServerProcess, token: str, method: str, path: str) -> Response:
    return server.request(method, ADMIN + path, headers=auth(token))


def content_path(media: MediaServer, media_id: str) -> Path:
    """Where the filesystem backend keeps local media (Synapse's layout)."""
    return media.media_store / "local_content" / media_id[:2] / media_id[2:4] / media_id[4:]


def thumbnail_dir(media: MediaServer, media_id: str) -> Path:
    return media.media_store / "local_thumbnails" / media_id[:2] / media_id[2:4] / media_id[4:]


def test_quarantined_media_is_not_served_until_released(server: ServerProcess, admin: str) -> None:
    token = new_user(server)["access_token"]
    media_id = uploaded(server, token, PNG, "image/png")
    response = admin_call(server, admin, "POST", f"/media/quarantine/localhost/{media_id}")
    assert (response.status, response.json()) == (200, {})
    assert error_of(download(server, token, media_id)) == (404, "M_NOT_FOUND")
    assert error_of(thumbnail(server, token, media_id, width=32, height=32)) == (404, "M_NOT_FOUND")
    info = admin_call(server, admin, "GET", f"/media/localhost/{media_id}")
    assert info.json()["media_info"]["quarantined_by"].startswith("@admin-")

    response = admin_call(server, admin, "POST", f"/media/unquarantine/localhost/{media_id}")
    assert response.status == 200
    released = download(server, token, media_id)
    assert released.status == 200
    assert released.body == PNG
    assert thumbnail(server, token, media_id, width=32, height=32).status == 200


def test_deleted_media_is_gone_from_the_media_store(
    media: MediaServer, server: ServerProcess, admin: str
) -> None:
    token = new_user(server)["access_token"]
    media_id = uploaded(server, token, PNG, "image/png")
    # Every preset, so none is still being made in the background when it is deleted.
    for width, height, method in ((32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"),
                                  (640, 480, "scale"), (800, 600, "scale")):  # fmt: skip
        made = thumbnail(server, token, media_id, width=width, height=height, method=method)
        assert made.status == 200
    path = content_path(media, media_id)
    assert path.read_bytes() == PNG
    assert any(thumbnail_dir(media, media_id).iterdir())

    response = admin_call(server, admin, "DELETE", f"/media/localhost/{media_id}")
    assert response.status == 200, response.body
    assert response.json() == {"deleted_media": [media_id], "total": 1}
    assert error_of(download(server, token, media_id)) == (404, "M_NOT_FOUND")
    assert error_of(thumbnail(server, token, media_id, width=32, height=32)) == (404, "M_NOT_FOUND")
    assert not path.exists()
    thumbnails = thumbnail_dir(media, media_id)
    assert not thumbnails.exists() or not any(thumbnails.iterdir())
    again = admin_call(server, admin, "DELETE", f"/media/localhost/{media_id}")
    assert error_of(again) == (404, "M_NOT_FOUND")


def test_users_media_are_listed_page_by_page(server: ServerProcess, admin: str) -> None:
    account = new_user(server)
    token, user_id = account["access_token"], account["user_id"]
    ids = [
        uploaded(server, token, f"file {i}".encode(), "text/plain", f"f{i}.txt") for i in range(3)
    ]
    path = f"/users/{quote(user_id)}/media"
    first = admin_call(server, admin, "GET", f"{path}?limit=2")
    assert first.status == 200, first.body
    body = first.json()
    assert body["total"] == 3
    assert len(body["media"]) == 2
    assert body["next_token"] == 2
    rest = admin_call(server, admin, "GET", f"{path}?limit=2&from={body['next_token']}")
    rest_body = rest.json()
    assert rest_body["total"] == 3
    assert "next_token" not in rest_body
    listed: list[dict[str, Any]] = body["media"] + rest_body["media"]
    assert sorted(m["media_id"] for m in listed) == sorted(ids)
    by_id = {m["media_id"]: m for m in listed}
    assert by_id[ids[1]]["upload_name"] == "f1.txt"
    assert by_id[ids[1]]["media_length"] == len(b"file 1")
    assert by_id[ids[1]]["media_type"].startswith("text/plain")
    # Someone who uploaded nothing has nothing listed.
    nobody = new_user(server)["user_id"]
    empty = admin_call(server, admin, "GET", f"/users/{quote(nobody)}/media").json()
    assert empty["total"] == 0 and empty["media"] == []


def test_purging_the_remote_cache_deletes_no_local_media(server: ServerProcess, admin: str) -> None:
    token = new_user(server)["access_token"]
    media_id = uploaded(server, token, b"local and kept", "text/plain")
    now = int(time.time() * 1000) + 60_000
    response = admin_call(server, admin, "POST", f"/purge_media_cache?before_ts={now}")
    assert response.status == 200, response.body
    assert response.json() == {"deleted": 0}
    assert download(server, token, media_id).body == b"local and kept"
    missing = admin_call(server, admin, "POST", "/purge_media_cache")
    assert error_of(missing) == (400, "M_MISSING_PARAM")


def test_media_admin_api_is_for_server_admins_only(server: ServerProcess) -> None:
    account = new_user(server)
    token = account["access_token"]
    media_id = uploaded(server, token, PNG, "image/png")
    requests = [
        ("POST", f"/media/quarantine/localhost/{media_id}"),
        ("POST", f"/media/unquarantine/localhost/{media_id}"),
        ("GET", f"/media/localhost/{media_id}"),
        ("DELETE", f"/media/localhost/{media_id}"),
        ("GET", f"/users/{quote(account['user_id'])}/media"),
        ("POST", f"/purge_media_cache?before_ts={int(time.time() * 1000)}"),
    ]
    for method, path in requests:
        response = admin_call(server, token, method, path)
        assert error_of(response) == (403, "M_FORBIDDEN"), (method, path)
        anonymous = server.request(method, ADMIN + path)
        assert error_of(anonymous) == (401, "M_MISSING_TOKEN"), (method, path)
    # Nothing happened to the media.
    assert download(server, token, media_id).body == PNG
