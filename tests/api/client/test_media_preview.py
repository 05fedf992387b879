"""URL previews through a real server: a page the test serves on loopback is
previewed only when the config allows loopback, its image is stored as media, and
previews are off unless enabled.

spec: client-server-api/modules/content_repo.md (GET /_matrix/client/v1/media/preview_url)
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image

from tests.support.matrix import register, running_server

PAGE = b"""<!doctype html><html><head>
<meta property="og:title" content="A page on loopback">
<meta property="og:description" content="Served by the test itself.">
<meta property="og:image" content="/picture.png">
<title>fallback title</title></head><body><p>Hello</p></body></html>"""


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@contextmanager
def page_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 with an HTML page and its image; yields its base
    URL and the paths it was asked for."""
    picture = _png()
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            if self.path == "/page":
                body, content_type = PAGE, "text/html; charset=utf-8"
            elif self.path == "/picture.png":
                body, content_type = picture, "image/png"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def preview(server: Any, token: str, url: str) -> Any:
    return server.request(
        "GET",
        f"/_matrix/client/v1/media/preview_url?url={quote(url, safe='')}",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_loopback_page_is_previewed_only_when_loopback_is_allowed(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "allowed").mkdir()
    with page_server() as (base_url, asked):
        with running_server(
            tmp_path / "default", database_config, url_preview_enabled=True
        ) as server:
            token = register(server, "alice")["access_token"]
            refused = preview(server, token, f"{base_url}/page")
            assert refused.status == 403, refused.body
            assert refused.json()["errcode"] == "M_FORBIDDEN"
        # The default blacklist stopped it before any connection was made.
        assert asked == []

        # The same database, restarted with loopback allowed.
        with running_server(
            tmp_path / "allowed",
            database_config,
            url_preview_enabled=True,
            url_preview_ip_range_whitelist=["127.0.0.1"],
        ) as server:
            token = register(server, "bob")["access_token"]
            answered = preview(server, token, f"{base_url}/page")
            assert answered.status == 200, answered.body
            og = answered.json()
            assert og["og:title"] == "A page on loopback"
            assert og["og:description"] == "Served by the test itself."
            assert og["og:image"].startswith("mxc://")
            assert (og["og:image:width"], og["og:image:height"]) == (120, 80)
            assert og["matrix:image:size"] > 0

            # The image is real media, served like any other.
            server_name, media_id = og["og:image"][len("mxc://") :].split("/")
            image = server.request(
                "GET",
                f"/_matrix/client/v1/media/download/{server_name}/{media_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert image.status == 200
            assert Image.open(io.BytesIO(image.body)).size == (120, 80)

            # A second preview of the same page comes from the cache.
            fetched = len(asked)
            again = preview(server, token, f"{base_url}/page")
            assert again.json() == og
            assert len(asked) == fetched


def test_previews_are_refused_when_disabled(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(tmp_path, database_config) as server:
        token = register(server, "alice")["access_token"]
        answered = preview(server, token, "http://example.com/")
        assert answered.status == 404
        assert answered.json()["errcode"] == "M_UNRECOGNIZED"


def test_preview_needs_a_url_and_a_token(tmp_path: Path, database_config: dict[str, Any]) -> None:
    with running_server(tmp_path, database_config, url_preview_enabled=True) as server:
        token = register(server, "alice")["access_token"]
        missing = server.request(
            "GET",
            "/_matrix/client/v1/media/preview_url",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert (missing.status, missing.json()["errcode"]) == (400, "M_MISSING_PARAM")
        anonymous = server.request(
            "GET", "/_matrix/client/v1/media/preview_url?url=http%3A%2F%2Fexample.com%2F"
        )
        assert (anonymous.status, anonymous.json()["errcode"]) == (401, "M_MISSING_TOKEN")
        not_http = preview(server, token, "file:///etc/passwd")
        assert (not_http.status, not_http.json()["errcode"]) == (400, "M_INVALID_PARAM")
