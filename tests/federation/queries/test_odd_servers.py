"""How our server takes answers of other servers that are odd, old or broken: a
media ``Location`` part is followed (HTTPS only; the file behind it is written to
disk as it arrives, whatever its size, and refused past the upload limit), a server without the federation
media endpoint is asked on the legacy one, a garbled, truncated or oversized answer
is a 502 for the client (never a 500, a cached file or a partial file left on disk:
downloads are written to disk as they arrive, so the size limit holds on the bytes
as they come, with or without a ``Content-Length``), and a directory that cannot
filter is searched here.  The other server is a small HTTPS server of the test's
(certificate from the test CA), named ``localhost:<its port>``.

spec: server-server-api.md#content-repository (authed_content_repo.yaml),
#published-room-directory
"""

from __future__ import annotations

import hashlib
import json
import random
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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
MIB = 1024 * 1024
#: Over the spool's 1 MiB blocks, so a refused download has begun its file on disk,
#: and over :data:`LARGE_FILE_SIZE`.
MAX_UPLOAD = 24 * MIB
#: Larger than the upload limit, by more than the multipart framing may add.
TOO_LARGE = MAX_UPLOAD + 2 * MIB
#: A file far larger than anything our server reads into memory.
LARGE_FILE_SIZE = 20 * MIB
#: How much of a file is sent before the gated redirect target waits for our server
#: to have begun writing it to disk (its temporary files: ``upload-*``).
GATE_AT = 4 * MIB
GATE_SEEN = 1 * MIB
#: How long the gated target waits for that before giving up (failing the download).
GATE_PATIENCE_S = 30.0
BOUNDARY = "fake-boundary"


@cache
def large_file() -> bytes:
    # Random bytes: a file whose pieces are all alike would hide pieces swapped or lost.
    return random.Random(16).randbytes(LARGE_FILE_SIZE)


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
    #: Our server's temporary media folder, once it runs (for the gated target).
    temp_dir: Path | None = None

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        base = f"https://localhost:{self.port}"
        federation = "/_matrix/federation/v1/media/download/"
        if path.startswith(federation + "redirected"):
            # redirected, redirected-large, redirected-huge...: the file is elsewhere.
            target = "/files/" + path[len(federation) :]
            location = f"Location: {base}{target}"
            self.answer(200, f"multipart/mixed; boundary={BOUNDARY}", multipart(location, b""))
        elif path == "/files/redirected-large":
            self.answer(200, "application/octet-stream", large_file())
        elif path == "/files/redirected-gated":
            self.answer_gated(large_file()[: GATE_AT * 2])
        elif path == "/files/redirected-huge":
            self.answer(200, "application/octet-stream", b"x" * TOO_LARGE)
        elif path == "/files/redirected-huge-unannounced":
            self.answer(200, "application/octet-stream", b"x" * TOO_LARGE, length=False)
        elif path == federation + "to-plain-http":
            location = f"Location: http://localhost:{self.port}/files/redirected"
            self.answer(200, f"multipart/mixed; boundary={BOUNDARY}", multipart(location, b""))
        elif path == "/files/redirected":
            self.answer(200, "text/plain", FILE)
        elif path == federation + "garbled":
            self.answer(200, f"multipart/mixed; boundary={BOUNDARY}", b"--nope\r\nrubbish")
        elif path == federation + "huge":
            body = multipart("Content-Type: application/octet-stream", b"x" * TOO_LARGE)
            self.answer(200, f"multipart/mixed; boundary={BOUNDARY}", body)
        elif path == federation + "huge-unannounced":
            # No Content-Length: only the bytes themselves show the file is too large.
            body = multipart("Content-Type: application/octet-stream", b"x" * TOO_LARGE)
            self.answer(200, f"multipart/mixed; boundary={BOUNDARY}", body, length=False)
        elif path == federation + "truncated":
            # The file part never ends: the connection closes in the middle of it.
            body = multipart("Content-Type: text/plain", b"y" * (2 * MIB))
            cut = body[: -len(f"\r\n--{BOUNDARY}--\r\n")]
            self.answer(200, f"multipart/mixed; boundary={BOUNDARY}", cut, length=False)
        elif path == federation + "not-multipart":
            self.answer(200, "application/octet-stream", b"just bytes")
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

    def answer(self, status: int, content_type: str, body: bytes, *, length: bool = True) -> None:
        """``length=False``: no ``Content-Length``, the body ends with the connection
        (HTTP/1.0, as this handler speaks)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # our server dropped the connection: what a refusal looks like

    def answer_gated(self, body: bytes) -> None:
        """``body``, of which only the first :data:`GATE_AT` bytes are sent until a
        temporary file of our server's holds :data:`GATE_SEEN` bytes or more.  A
        server that read the body into memory before writing it out would never
        show one: then the rest is never sent (the connection closes short of the
        announced length) and the download fails."""
        # Files left by earlier downloads (there should be none) do not count.
        earlier = set(self.partial_files())
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body[:GATE_AT])
            self.wfile.flush()
            deadline = time.monotonic() + GATE_PATIENCE_S
            while not self.partial_file_seen(earlier):
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)
            self.wfile.write(body[GATE_AT:])
        except OSError:
            pass

    def partial_files(self) -> list[Path]:
        assert self.temp_dir is not None, "the test sets temp_dir"
        return list(self.temp_dir.glob("upload-*"))

    def partial_file_seen(self, earlier: set[Path]) -> bool:
        for path in self.partial_files():
            if path in earlier:
                continue
            try:
                if path.stat().st_size >= GATE_SEEN:
                    return True
            except FileNotFoundError:
                continue  # removed meanwhile
        return False

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_fake_origin(ca: TestCA, stack: ExitStack) -> tuple[str, type[FakeOrigin]]:
    """Starts the fake server; its server name and its handler class (whose class
    attributes its requests see)."""
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
    return f"localhost:{port}", handler


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
        origin, handler = serve_fake_origin(ca, stack)
        database = stack.enter_context(database_section(request.param, folder / "db"))
        ours = stack.enter_context(
            federated_server(folder, database, ca, name="ours", max_upload_size=MAX_UPLOAD)
        )
        handler.temp_dir = ours.process.tmp_path / "media" / "tmp"
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


def test_a_large_file_behind_a_location_arrives_intact(setup: Setup) -> None:
    response = download(setup, "redirected-large")
    assert response.status == 200, response.body[:200]
    assert len(response.body) == LARGE_FILE_SIZE
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(large_file()).digest()


def test_a_file_behind_a_location_is_written_to_disk_as_it_arrives(setup: Setup) -> None:
    # The redirect target sends the rest of the file only once part of it is on disk.
    response = download(setup, "redirected-gated")
    assert response.status == 200, response.body[:200]
    assert response.body == large_file()[: GATE_AT * 2]


def test_a_server_without_the_federation_endpoint_is_asked_the_old_way(setup: Setup) -> None:
    response = download(setup, "legacy")
    assert response.status == 200, response.body
    assert response.body == LEGACY_FILE


def stored_files(setup: Setup) -> set[Path]:
    """Every file in our media store, temporary ones included."""
    media = setup.ours.process.tmp_path / "media"
    return {path for path in media.rglob("*") if path.is_file()}


@pytest.mark.parametrize("media_id", ["garbled", "to-plain-http", "truncated", "not-multipart"])
def test_an_unusable_answer_is_a_bad_gateway(setup: Setup, media_id: str) -> None:
    before = stored_files(setup)
    response = download(setup, media_id)
    assert response.status == 502, response.body
    # Nothing is kept of it, not even the part of the file that did arrive.
    assert stored_files(setup) == before


@pytest.mark.parametrize(
    "media_id",
    ["huge", "huge-unannounced", "redirected-huge", "redirected-huge-unannounced"],
)
def test_media_larger_than_the_upload_limit_is_refused(setup: Setup, media_id: str) -> None:
    before = stored_files(setup)
    response = download(setup, media_id)
    assert response.status == 502, response.body
    assert response.json()["errcode"] == "M_TOO_LARGE"
    assert stored_files(setup) == before


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
