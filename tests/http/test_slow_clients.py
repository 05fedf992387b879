"""Slow and greedy clients against a real server process, over raw sockets.

Deadlines are configured short (2 s) so the tests are quick; they are asserted with
generous bounds, only to show that the deadline — not some other timer — ended the
connection.  These tests are about connections, not storage, so one SQLite server
serves the whole module.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import http
from tests.support.accounts import SHARED_SECRET, register_with_secret
from tests.support.server_process import ServerProcess, free_port, server_config

SHORT = 2.0  # seconds: header, body and idle deadline of the first listener
CAPPED_HEADER_TIMEOUT = 4.0
CAP = 50
WIDE_CAP = 2000


class Ports:
    def __init__(self) -> None:
        self.short = free_port()
        self.capped = free_port()
        self.wide = free_port()


@pytest.fixture(scope="module")
def ports() -> Ports:
    return Ports()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ports: Ports) -> Iterator[ServerProcess]:
    tmp_path: Path = tmp_path_factory.mktemp("slow_clients")
    resources = [{"names": ["client"]}]
    listeners = [
        {
            "port": ports.short,
            "bind_addresses": ["127.0.0.1"],
            "resources": resources,
            "request_header_timeout": f"{SHORT:.0f}s",
            "request_body_timeout": f"{SHORT:.0f}s",
            "request_body_min_rate": 100,
            "idle_timeout": f"{SHORT:.0f}s",
        },
        {
            "port": ports.capped,
            "bind_addresses": ["127.0.0.1"],
            "resources": resources,
            "request_header_timeout": f"{CAPPED_HEADER_TIMEOUT:.0f}s",
            "max_connections": CAP,
        },
        {
            "port": ports.wide,
            "bind_addresses": ["127.0.0.1"],
            "resources": resources,
            # Long enough that none of the idle connections is closed during the test.
            "request_header_timeout": "60s",
            "max_connections": WIDE_CAP,
        },
    ]
    database = {"name": "sqlite3", "args": {"database": str(tmp_path / "homeserver.db")}}
    config = server_config(
        tmp_path,
        database,
        ports.short,
        listeners=listeners,
        registration_shared_secret=SHARED_SECRET,
    )
    process = ServerProcess(tmp_path, config)
    process.start()
    yield process
    process.stop()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


HEALTH = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"


def read_response(sock: socket.socket) -> bytes:
    """One complete response (headers and Content-Length body), leaving the socket open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body


def read_until_closed(sock: socket.socket, timeout: float = 15) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], deadline - time.monotonic())
        if not readable:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"still open after {timeout}s; received {received!r}")


def trickle_until_closed(
    sock: socket.socket, data: bytes, interval: float = 0.2
) -> tuple[float, int, bytes]:
    """Send ``data`` a byte every ``interval`` s until the server answers or closes.

    Returns the seconds until then, the bytes sent and what the server sent.
    """
    started = time.monotonic()
    for sent, byte in enumerate(data):
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started, sent, read_until_closed(sock)
        readable, _, _ = select.select([sock], [], [], interval)
        if readable:
            return time.monotonic() - started, sent + 1, read_until_closed(sock)
    raise AssertionError(f"the server waited for all {len(data)} trickled bytes")


def test_trickled_headers_are_cut_off_at_the_header_deadline(
    server: ServerProcess, ports: Ports
) -> None:
    with connect(ports.short) as sock:
        head = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + b"a" * 500
        elapsed, sent, answer = trickle_until_closed(sock, head)
    # A byte every 0.2 s is far more often than any idle timer would need.
    assert sent >= 5
    assert SHORT * 0.8 <= elapsed <= SHORT + 8
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_trickled_body_is_cut_off_at_the_body_deadline(server: ServerProcess, ports: Ports) -> None:
    body = b'{"type": "m.login.password", "padding": "' + b"a" * 1000 + b'"}'
    with connect(ports.short) as sock:
        sock.sendall(
            b"POST /_matrix/client/v3/login HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        elapsed, sent, answer = trickle_until_closed(sock, body)
    # 5 bytes/s against a minimum of 100: the deadline barely moves.
    assert sent >= 5
    assert SHORT * 0.8 <= elapsed <= SHORT + 8
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"M_UNKNOWN" in answer


def test_idle_kept_alive_connection_is_closed_after_the_idle_timeout(
    server: ServerProcess, ports: Ports
) -> None:
    with connect(ports.short) as sock:
        sock.sendall(HEALTH)
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        answered = time.monotonic()
        assert read_until_closed(sock) == b""  # closed without another word
        idle = time.monotonic() - answered
    assert SHORT * 0.8 <= idle <= SHORT + 8


def test_long_poll_outlives_every_receive_deadline(server: ServerProcess, ports: Ports) -> None:
    registered = register_with_secret(server, "sleeper")
    headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
    first = server.request("GET", "/_matrix/client/v3/sync?timeout=0", headers=headers)
    since = first.json()["next_batch"]
    started = time.monotonic()
    poll = server.request(
        "GET",
        f"/_matrix/client/v3/sync?since={since}&timeout={int(SHORT * 1500)}",
        headers=headers,
        timeout=60,
    )
    assert poll.status == 200, poll.body
    # It really waited past the 2 s header, body and idle deadlines.
    assert time.monotonic() - started >= SHORT * 1.25


def test_connection_cap_refuses_new_connections_but_serves_open_ones(
    server: ServerProcess, ports: Ports
) -> None:
    with ExitStack() as stack:
        held = [stack.enter_context(connect(ports.capped)) for _ in range(CAP)]
        # One past the cap: accepted by the kernel, closed by the server unanswered.
        with connect(ports.capped) as refused:
            try:
                refused.sendall(HEALTH)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert read_until_closed(refused) == b""
        # The open connections are still served.
        held[0].sendall(HEALTH)
        assert read_response(held[0]).startswith(b"HTTP/1.1 200 ")
        # The idle ones are closed at their header deadline, which frees the slots.
        for sock in held[1:]:
            assert read_until_closed(sock, timeout=CAPPED_HEADER_TIMEOUT + 15) == b""
        with connect(ports.capped) as later:
            later.sendall(HEALTH)
            assert read_response(later).startswith(b"HTTP/1.1 200 ")
    assert "connections open (max_connections); refusing new connections" in server.log()


def test_a_thousand_idle_connections_do_not_stop_a_request_under_the_cap(
    server: ServerProcess, ports: Ports
) -> None:
    with ExitStack() as stack:
        idle = [stack.enter_context(connect(ports.wide)) for _ in range(1000)]
        response = http.request(f"http://127.0.0.1:{ports.wide}", "GET", "/health")
        assert response.status == 200
        # ...while all thousand were still open (none readable: no EOF, no reset).
        poller = select.poll()
        for sock in idle:
            poller.register(sock, select.POLLIN)
        assert poller.poll(0) == []
