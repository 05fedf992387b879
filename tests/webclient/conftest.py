"""For the serving tests, a stand-in build of the web client and a real server serving
it; for the browser tests, one real server per module serving web-client/dist, and
its users alice and bob."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.matrix import running_server
from tests.support.server_process import ServerProcess
from tests.webclient.browser_support import browser_user, require_browser, web_client_server

#: Users of the browser tests by name: what ``browser_user`` registered.
Users = dict[str, dict[str, str]]

#: The shape of Vite's output: an index.html with one inline script (the theme's
#: first paint) and hashed files under assets/.
INDEX_HTML = """<!doctype html>
<html lang="en">
<head>
<script>
  document.documentElement.dataset.theme = "light";
</script>
<script type="module" crossorigin src="/assets/index-AbC123.js"></script>
</head>
<body><div id="app"></div></body>
</html>
"""
APP_JS = "export const hello = 'world';\n" * 200


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "icons").mkdir()
    (folder / "index.html").write_text(INDEX_HTML)
    (folder / "assets" / "index-AbC123.js").write_text(APP_JS)
    (folder / "assets" / "crypto-Xy9.wasm").write_bytes(b"\0asm\x01\0\0\0" + bytes(4096))
    (folder / "sw.js").write_text("self.addEventListener('fetch', () => {});\n" * 40)
    (folder / "manifest.webmanifest").write_text('{"name": "Chat", "start_url": "/"}')
    (folder / "icons" / "icon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return folder


def sqlite(tmp_path: Path) -> dict[str, Any]:
    return {"name": "sqlite3", "args": {"database": str(tmp_path / "homeserver.db")}}


@pytest.fixture
def app_server(tmp_path: Path, dist: Path) -> Iterator[ServerProcess]:
    """Serving files involves no database beyond start-up: SQLite only."""
    with running_server(
        tmp_path, sqlite(tmp_path), web_client={"directory": str(dist), "build": "never"}
    ) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_browser()
    with web_client_server(tmp_path_factory.mktemp("server")) as process:
        yield process


@pytest.fixture(scope="module")
def users(server: ServerProcess) -> Users:
    return {name: browser_user(server, name) for name in ("alice", "bob")}
