"""Long-polls end with their client, are shared between identical requests, and are
rate limited; so are the other expensive reads (/threads, /hierarchy).

Through the real server over HTTP, on both engines.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_sync import sync, timeline_texts
from tests.support.matrix import call, register, running_server
from tests.support.server_process import ServerProcess

ABANDONED = "client disconnected, request abandoned"


def open_long_poll(server: ServerProcess, token: str, query: str) -> socket.socket:
    """A raw connection with a /sync request sent and its answer not read."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(
        f"GET /_matrix/client/v3/sync?{query} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    return sock


def wait_for_log(server: ServerProcess, text: str, count: int = 1, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.log().count(text) >= count:
            return True
        time.sleep(0.05)
    return False


def test_long_poll_is_abandoned_as_soon_as_its_client_disconnects(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    since = sync(open_server, alice)["next_batch"]
    sock = open_long_poll(open_server, alice, f"since={since}&timeout=120000")
    time.sleep(0.5)
    assert ABANDONED not in open_server.log()
    sock.close()
    # Long before the two-minute timeout: the handler was cancelled with the connection.
    assert wait_for_log(open_server, ABANDONED)
    # The server is none the worse: a new long-poll still wakes on a message.
    room_id = create_room(open_server, alice)
    since = sync(open_server, alice)["next_batch"]
    send_text(open_server, alice, room_id, "still here", "t1")
    assert timeline_texts(sync(open_server, alice, f"?since={since}&timeout=5000"), room_id) == [
        "still here"
    ]


def test_identical_syncs_share_an_answer_that_survives_one_client_leaving(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    since = sync(open_server, alice)["next_batch"]
    query = f"since={since}&timeout=20000"
    result: dict[str, Any] = {}

    def stay() -> None:
        result["body"] = call(open_server, "GET", f"/sync?{query}", token=alice).json()

    staying = threading.Thread(target=stay)
    staying.start()
    leaving = open_long_poll(open_server, alice, query)
    time.sleep(0.5)
    leaving.close()
    time.sleep(0.3)
    assert "body" not in result  # still waiting, though its twin left
    send_text(open_server, alice, room_id, "for the one who stayed", "t1")
    staying.join(timeout=15)
    assert timeline_texts(result["body"], room_id) == ["for the one who stayed"]


def test_concurrent_identical_syncs_get_the_same_answer(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    since = sync(open_server, alice)["next_batch"]
    bodies: list[dict[str, Any]] = []

    def poll() -> None:
        bodies.append(sync(open_server, alice, f"?since={since}&timeout=20000"))

    pollers = [threading.Thread(target=poll) for _ in range(3)]
    for poller in pollers:
        poller.start()
    time.sleep(0.5)
    send_text(open_server, alice, room_id, "once", "t1")
    for poller in pollers:
        poller.join(timeout=15)
    assert len(bodies) == 3
    assert all(timeline_texts(body, room_id) == ["once"] for body in bodies)
    assert len({body["next_batch"] for body in bodies}) == 1


def assert_limited(response: Any) -> None:
    assert response.status == 429, response.body
    assert response.json()["errcode"] == "M_LIMIT_EXCEEDED"
    assert response.json()["retry_after_ms"] > 0


def test_sync_threads_and_hierarchy_are_rate_limited_per_user(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    slow = {"per_second": 0.01, "burst_count": 3}
    with running_server(
        tmp_path, database_config, rc_sync=slow, rc_threads=slow, rc_hierarchy=slow
    ) as server:
        alice = register(server, "alice")["access_token"]
        bob = register(server, "bob")["access_token"]
        room_id = create_room(server, alice)
        for path in (
            "/sync?timeout=0",
            f"/rooms/{room_id}/threads",
            f"/rooms/{room_id}/hierarchy",
        ):
            # /sync is a v3 endpoint, /threads and /hierarchy are v1 ones.
            prefix = "/_matrix/client/v3" if path.startswith("/sync") else "/_matrix/client/v1"
            headers = {"Authorization": f"Bearer {alice}"}
            for _ in range(3):
                ok = server.request("GET", prefix + path, headers=headers)
                assert ok.status == 200, (path, ok.body)
            assert_limited(server.request("GET", prefix + path, headers=headers))
        # Per user: Bob's bucket is his own.
        assert call(server, "GET", "/sync?timeout=0", token=bob).status == 200
