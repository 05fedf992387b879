"""The web client served at ``/`` of a client listener, over real HTTP: files with
their types and caching, deep links, gzip, conditional requests, security headers,
and the landing page while no build exists.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from pathlib import Path

from homeserver.webclient.policy import content_security_policy
from tests.support.http import Response
from tests.support.matrix import running_server
from tests.support.server_process import ServerProcess
from tests.webclient.conftest import APP_JS, INDEX_HTML, sqlite


def get(server: ServerProcess, path: str, **headers: str) -> Response:
    return server.request("GET", path, headers=headers)


def test_root_and_deep_links_are_the_app_with_its_security_headers(
    app_server: ServerProcess,
) -> None:
    for path in ("/", "/index.html", "/rooms/!abc:localhost", "/settings"):
        page = get(app_server, path)
        assert page.status == 200, path
        assert page.body.decode() == INDEX_HTML
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["x-frame-options"] == "DENY"


def test_the_policy_allows_the_inline_theme_script_by_hash_and_wasm(
    app_server: ServerProcess,
) -> None:
    inline = '\n  document.documentElement.dataset.theme = "light";\n'
    expected = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    policy = get(app_server, "/").headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert directives["script-src"] == ["'self'", "'wasm-unsafe-eval'", f"'sha256-{expected}'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["worker-src"] == ["'self'"]
    # Any homeserver over TLS (people sign in to other servers too), and this one
    # over plain HTTP for local setups.
    host = f"127.0.0.1:{app_server.port}"
    assert directives["connect-src"] == ["'self'", "https:", "wss:", f"ws://{host}"]
    # Media is fetched with the token and shown as blobs: no remote images.
    assert directives["img-src"] == ["'self'", "blob:", "data:"]
    assert directives["media-src"] == ["'self'", "blob:", "data:"]


def test_files_have_their_types_and_hashed_assets_are_immutable(
    app_server: ServerProcess,
) -> None:
    expected = {
        "/assets/index-AbC123.js": ("text/javascript; charset=utf-8", "immutable"),
        "/assets/crypto-Xy9.wasm": ("application/wasm", "immutable"),
        "/sw.js": ("text/javascript; charset=utf-8", "no-cache"),
        "/manifest.webmanifest": ("application/manifest+json", "no-cache"),
        "/icons/icon.svg": ("image/svg+xml", "no-cache"),
    }
    for path, (content_type, caching) in expected.items():
        response = get(app_server, path)
        assert response.status == 200, path
        assert response.headers["content-type"] == content_type, path
        if caching == "immutable":
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        else:
            assert response.headers["cache-control"] == "no-cache"
    assert get(app_server, "/assets/index-AbC123.js").body.decode() == APP_JS


def test_text_and_wasm_are_gzipped_for_clients_that_accept_it(
    app_server: ServerProcess, dist: Path
) -> None:
    for path in ("/assets/index-AbC123.js", "/assets/crypto-Xy9.wasm", "/sw.js"):
        zipped = get(app_server, path, **{"Accept-Encoding": "gzip, deflate, br"})
        assert zipped.headers["content-encoding"] == "gzip", path
        assert zipped.headers["vary"] == "Accept-Encoding"
        plain = get(app_server, path)
        assert "content-encoding" not in plain.headers
        assert gzip.decompress(zipped.body) == plain.body
        assert zipped.headers["etag"] != plain.headers["etag"]
    refused = get(app_server, "/assets/index-AbC123.js", **{"Accept-Encoding": "gzip;q=0"})
    # A few hundred bytes gain nothing from gzip.
    assert "content-encoding" not in get(app_server, "/", **{"Accept-Encoding": "gzip"}).headers
    assert "content-encoding" not in refused.headers


def test_a_precompressed_sibling_is_served_as_is(app_server: ServerProcess, dist: Path) -> None:
    # Written by the build (homeserver/webclient/build.py), after the file.
    marker = gzip.compress(b"the build's own gzip")
    (dist / "sw.js.gz").write_bytes(marker)
    response = get(app_server, "/sw.js", **{"Accept-Encoding": "gzip"})
    assert response.body == marker


def test_validators_answer_304(app_server: ServerProcess) -> None:
    first = get(app_server, "/assets/index-AbC123.js")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert get(app_server, "/assets/index-AbC123.js", **{"If-None-Match": etag}).status == 304
    assert (
        get(app_server, "/assets/index-AbC123.js", **{"If-Modified-Since": modified}).status == 304
    )
    assert get(app_server, "/assets/index-AbC123.js", **{"If-None-Match": '"other"'}).status == 200
    assert (
        get(
            app_server,
            "/assets/index-AbC123.js",
            **{"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
        ).status
        == 200
    )


def test_head_has_the_headers_and_no_body(app_server: ServerProcess) -> None:
    response = app_server.request("HEAD", "/assets/index-AbC123.js")
    assert response.status == 200
    assert response.body == b""
    assert response.headers["content-length"] == str(len(APP_JS))


def test_a_missing_asset_is_404_not_the_page(app_server: ServerProcess) -> None:
    # A page of an older build asking for its chunks must fail, not get HTML.
    response = get(app_server, "/assets/index-Old999.js")
    assert response.status == 404
    assert not response.headers["content-type"].startswith("text/html")


def test_server_paths_keep_their_json_answers(app_server: ServerProcess) -> None:
    unknown = get(app_server, "/_matrix/client/v3/no-such-endpoint")
    assert unknown.status == 404
    assert unknown.json()["errcode"] == "M_UNRECOGNIZED"
    assert get(app_server, "/_matrix/client/versions").json()["versions"]
    assert get(app_server, "/health").body == b"OK"
    assert get(app_server, "/.well-known/matrix/client").headers["content-type"] == (
        "application/json"
    )
    assert get(app_server, "/_synapse/nothing").json()["errcode"] == "M_UNRECOGNIZED"
    # Only GET and HEAD reach the app.
    posted = app_server.request("POST", "/settings", body=b"{}")
    assert posted.json()["errcode"] == "M_UNRECOGNIZED"


def test_no_path_reaches_outside_the_build(app_server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("not for you")
    (tmp_path / "dist" / ".hidden").write_text("not for you")
    for path in (
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/.hidden",
    ):
        response = get(app_server, path)
        assert b"not for you" not in response.body, path
    # A folder is no listing: the app answers (a deep link), or 404 under /assets.
    assert get(app_server, "/icons").body.decode() == INDEX_HTML


def test_a_build_made_while_running_is_served_at_once(
    app_server: ServerProcess, dist: Path
) -> None:
    (dist / "assets" / "index-New456.js").write_text("export {};\n")
    assert get(app_server, "/assets/index-New456.js").status == 200
    (dist / "index.html").write_text(INDEX_HTML.replace("AbC123", "New456"))
    assert "index-New456.js" in get(app_server, "/").body.decode()


def test_without_a_build_root_is_the_landing_page_saying_how_to_build(tmp_path: Path) -> None:
    empty = tmp_path / "no-build"
    empty.mkdir()
    with running_server(tmp_path, sqlite(tmp_path), web_client={"directory": str(empty)}) as server:
        page = get(server, "/")
        deep = get(server, "/rooms/x")
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    for directive in (
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ):
        assert directive in policy.split("; "), directive
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    text = page.body.decode()
    assert "Matrix homeserver <code>localhost</code>" in text
    assert f"http://127.0.0.1:{server.port}/" in text
    assert "homeserver build-web-client" in text
    assert deep.json()["errcode"] == "M_UNRECOGNIZED"


def test_a_disabled_web_client_is_not_served(tmp_path: Path, dist: Path) -> None:
    with running_server(
        tmp_path, sqlite(tmp_path), web_client={"directory": str(dist), "enabled": False}
    ) as server:
        page = get(server, "/")
    assert "Matrix homeserver" in page.body.decode()
    assert "build-web-client" not in page.body.decode()


def test_web_client_location_redirects_root_there(tmp_path: Path, dist: Path) -> None:
    with running_server(
        tmp_path,
        sqlite(tmp_path),
        web_client={"directory": str(dist)},
        web_client_location="https://app.example.com/",
    ) as server:
        root = get(server, "/")
        asset = get(server, "/assets/index-AbC123.js")
    assert root.status == 302
    assert root.headers["location"] == "https://app.example.com/"
    assert asset.status == 404


def test_the_policy_names_a_plain_http_homeserver_reached_by_another_name() -> None:
    def connect_src(homeserver_url: str) -> list[str]:
        policy = content_security_policy(
            script_hashes=[], host="localhost:8008", homeserver_url=homeserver_url
        )
        directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
        return directives["connect-src"]

    assert connect_src("http://10.0.0.5:8008/") == [
        "'self'",
        "https:",
        "wss:",
        "ws://localhost:8008",
        "http://10.0.0.5:8008",
        "ws://10.0.0.5:8008",
    ]
    # https: and wss: already cover a TLS homeserver.
    assert connect_src("https://matrix.example.com/") == [
        "'self'",
        "https:",
        "wss:",
        "ws://localhost:8008",
    ]
    # Nor does the page's own plain-HTTP origin need naming twice.
    assert connect_src("http://localhost:8008/") == [
        "'self'",
        "https:",
        "wss:",
        "ws://localhost:8008",
    ]
