"""How our server takes answers of other servers that are odd, old or broken: a
media ``Location`` part is followed (HTTPS only), a server without the federation
media endpoint is asked on the legacy one, a garbled or oversized answer is a 502
for the client (never a 500 or a cached file), and a directory that cannot filter
is searched here.  The other server is a small HTTPS server of the test's
(certificate from the test CA), named ``localhost:<its port>``.

spec: server-server-api.md#content-repository (authed_content_repo.yaml),
#published-room-directory
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import attrs
import pytest

from tests.federation.interop.clients import new_user
from tests.support.federation import (
    FederatedServer,
    TestCA,
    database_section,
    federated_server,
)
from tests.support.matrix import auth
from tests.support.server_process import free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-queries-odd")]

CLIENT_V1 = "/_matrix/client/v1"
FILE = b"the bytes behind the redirect\n" * 50
LEGACY_FILE = b"served the old way"
MAX_UPLOAD = 64 * 1024
BOUNDARY = "fake-boundary"


def directory_entry(room_id: str, name: str) -> dict[str, Any]:
    return {
        "room_id": room_id,
        "name": name,
        "num_joined_members": 4,
        "world_readable": True,
        "guest_can_join": False,
    }


PUBLIC_ROOMS = {
    "chunk": [
        directory_entry("!lobby:old.test", "The Lobby"),
        directory_entry("!garden:old.test", "Garden"),
        {"room_id": "!broken:old.test"},
    ],
    "total_room_count_estimate": 3,
}


def multipart(file_headers: str, file_body: bytes) -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n"
        f"--{BOUNDARY}\r\n{file_headers}\r\n\r\n".encode()
        + file_body
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


class FakeOrigin(BaseHTTPRequestHandler):
    """Answers by media ID: what another (odd, old or broken) server might send."""

    port: int = 0

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        base = f"https://localhost:{self.port}"
        federation = "/_matrix/federation/v1/media/download/"
        if path == federation + "redirected":
            location = f"Location: {base}/files/redirected"
            self.answer(200, f"multipart/mixed; boundary={BOUNDARY}", multipart(location, b""))
        elif path == federation + "to-plain-http":
            location = f"Location: http://localhost:{self.port}/files/redirected"
            self.answer(200, f"multipart/mixed; boundary={BOUNDARY}", multipart(location, b""))
        elif path == "/files/redirected":
            self.answer(200, "text/plain", FILE)
        elif path == federation + "garbled":
            self.answer(200, f"multipart/mixed; boundary={BOUNDARY}", b"--nope\r\nrubbish")
        elif path == federation + "huge":
            body = multipart("Content-Type: application/octet-stream", b"x" * (MAX_UPLOAD * 3))
            self.answer(200, f"multipart/mixed; boundary={BOUNDARY}", body)
        elif path == federation + "legacy":
            self.answer(404, "application/json", b'{"errcode":"M_UNRECOGNIZED","error":"?"}')
        elif path == "/_matrix/federation/v1/publicRooms":
            self.answer(200, "application/json", json.dumps(PUBLIC_ROOMS).encode())
        elif path == f"/_matrix/media/v3/download/localhost:{self.port}/legacy":
            self.answer(200, "text/plain", LEGACY_FILE)
        else:
            self.answer(404, "application/json", b'{"errcode":"M_NOT_FOUND","error":"no"}')

    def do_POST(self) -> None:
        # A server from before filtered directory searches (MSC2197).
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.answer(405, "application/json", b'{"errcode":"M_UNRECOGNIZED","error":"?"}')

    def answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_fake_origin(ca: TestCA, stack: ExitStack) -> str:
    """Starts the fake server; its server name."""
    port = free_port()
    pair = ca.issue("fake-origin")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.certificate_path, pair.private_key_path)
    handler = type("Handler", (FakeOrigin,), {"port": port})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    return f"localhost:{port}"


@attrs.frozen
class Setup:
    ours: FederatedServer
    origin: str


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp(f"remote-media-{request.param}")
    ca = TestCA.create(folder / "ca")
    with ExitStack() as stack:
        origin = serve_fake_origin(ca, stack)
        database = stack.enter_context(database_section(request.param, folder / "db"))
        ours = stack.enter_context(
            federated_server(folder, database, ca, name="ours", max_upload_size=MAX_UPLOAD)
        )
        yield Setup(ours, origin)


def download(setup: Setup, media_id: str) -> Any:
    user = new_user(setup.ours, "reader")
    return setup.ours.process.request(
        "GET",
        f"{CLIENT_V1}/media/download/{quote(setup.origin)}/{media_id}",
        headers=auth(user.access_token),
        timeout=60,
    )


def test_a_location_part_is_followed_to_the_file(setup: Setup) -> None:
    response = download(setup, "redirected")
    assert response.status == 200, response.body
    assert response.body == FILE
    assert response.headers["content-type"].startswith("text/plain")


def test_a_server_without_the_federation_endpoint_is_asked_the_old_way(setup: Setup) -> None:
    response = download(setup, "legacy")
    assert response.status == 200, response.body
    assert response.body == LEGACY_FILE


@pytest.mark.parametrize("media_id", ["garbled", "to-plain-http"])
def test_an_unusable_answer_is_a_bad_gateway(setup: Setup, media_id: str) -> None:
    response = download(setup, media_id)
    assert response.status == 502, response.body


def test_media_larger_than_the_upload_limit_is_refused(setup: Setup) -> None:
    response = download(setup, "huge")
    assert response.status == 502, response.body
    assert response.json()["errcode"] == "M_TOO_LARGE"


def test_media_the_origin_does_not_have_is_not_found(setup: Setup) -> None:
    assert download(setup, "missing").status == 404


def test_a_directory_that_cannot_filter_is_searched_here(setup: Setup) -> None:
    user = new_user(setup.ours, "reader")
    path = f"/_matrix/client/v3/publicRooms?server={quote(setup.origin)}"
    listed = setup.ours.process.request("GET", path, headers=auth(user.access_token))
    assert listed.status == 200, listed.body
    assert [room["room_id"] for room in listed.json()["chunk"]] == [
        "!lobby:old.test",
        "!garden:old.test",
    ]
    searched = setup.ours.process.request(
        "POST",
        path,
        json_body={"filter": {"generic_search_term": "lobby"}},
        headers=auth(user.access_token),
    )
    assert searched.status == 200, searched.body
    assert [room["room_id"] for room in searched.json()["chunk"]] == ["!lobby:old.test"]
