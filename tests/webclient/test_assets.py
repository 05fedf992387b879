"""Which file a URL path names inside the build, and nothing outside it."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from homeserver.webclient import assets
from homeserver.webclient.assets import AppFiles, content_type, precompress


def test_types_the_browser_insists_on() -> None:
    assert content_type("assets/x.wasm") == "application/wasm"
    assert content_type("manifest.webmanifest") == "application/manifest+json"
    assert content_type("a.mjs") == "text/javascript; charset=utf-8"
    assert content_type("sw.js") == "text/javascript; charset=utf-8"
    assert content_type("index.html") == "text/html; charset=utf-8"
    assert content_type("blob.unknownext") == "application/octet-stream"


def test_files_inside_are_found_and_nothing_else(dist: Path, tmp_path: Path) -> None:
    app = AppFiles(dist)
    found = app.find("/assets/index-AbC123.js")
    assert found is not None and found.name == "assets/index-AbC123.js"
    assert found.cache_control == "public, max-age=31536000, immutable"
    assert app.find("/sw.js") is not None and app.find("/sw.js").cache_control == "no-cache"  # type: ignore[union-attr]
    (tmp_path / "secret").write_text("x")
    (dist / ".env").write_text("x")
    (dist / "assets" / "link").symlink_to(tmp_path / "secret")
    for path in (
        "/../secret",
        "/%2e%2e/secret",
        "/assets/..%2F..%2Fsecret",
        "/assets/link",  # a symlink out of the build
        "/.env",
        "/assets",  # a folder
        "/",
        "/nope.js",
        "/%ff",
        "/a%00b",
        "/assets\\..\\..\\secret",
    ):
        assert app.find(path) is None, path


def test_precompress_writes_gz_siblings_of_compressible_files_only(dist: Path) -> None:
    (dist / "icons" / "icon.png").write_bytes(b"\x89PNG" + bytes(2048))
    written = precompress(dist)
    assert (dist / "assets" / "index-AbC123.js.gz").is_file()
    assert (dist / "assets" / "crypto-Xy9.wasm.gz").is_file()
    assert not (dist / "icons" / "icon.png.gz").exists()  # already compressed
    assert not (dist / "index.html.gz").exists()  # too small to gain
    assert written == 3  # the script, the WebAssembly and sw.js
    original = (dist / "sw.js").read_bytes()
    assert gzip.decompress((dist / "sw.js.gz").read_bytes()) == original


def test_the_memory_cache_is_bounded(dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "CACHE_BYTES", 8000)
    app = AppFiles(dist)
    found = [app.find(path) for path in ("/assets/index-AbC123.js", "/sw.js", "/index.html")]
    keys = [(asset, gzipped) for asset in found if asset is not None for gzipped in (False, True)]
    assert len(keys) == 6
    for asset, gzipped in keys:
        app.remember(asset, gzipped, b"x" * 2000)
        assert app.cached_bytes <= 8000
    # The least recently used went to make room.
    assert [app.cached_body(*key) is not None for key in keys] == [False] * 2 + [True] * 4
