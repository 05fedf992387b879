"""The WebSocket sync stream (docs/websocket-stream.md) against the real server, on
both engines, with a real WebSocket client (``websockets``).

Each test drives its client with ``asyncio.run``; the blocking HTTP helpers in
between are short requests to the server process, and the server buffers frames
meanwhile, so nothing is lost by not reading during them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_sync import sync
from tests.support.matrix import call, register, running_server
from tests.support.server_process import ServerProcess, free_port

STREAM = "/_matrix/client/unstable/dev.homeserver/stream"
#: Seconds to wait for any one answer from the server.
WAIT = 10


# -- helpers ------------------------------------------------------------------------


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def stream_url(server: ServerProcess, **params: Any) -> str:
    return f"ws://127.0.0.1:{server.port}{STREAM}?{urlencode(params)}"


@asynccontextmanager
async def open_stream(
    server: ServerProcess, token: str | None, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[ClientConnection]:
    if token is not None:
        params["access_token"] = token
    async with connect(
        stream_url(server, **params),
        additional_headers=headers,
        # The tests send the protocol's own pings; no library keep-alives.
        ping_interval=None,
        max_size=None,
        proxy=None,
        compression=None,
        open_timeout=10,
        close_timeout=5,
    ) as ws:
        yield ws


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        frame: dict[str, Any] = json.loads(await ws.recv())
    return frame


async def frame_of_type(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next frame of type ``kind``, skipping others (sync frames arrive any time)."""
    async with asyncio.timeout(WAIT):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


async def start(ws: ClientConnection) -> dict[str, Any]:
    """Read the hello and the first sync frame; the first sync's body."""
    hello = await next_frame(ws)
    assert hello["type"] == "hello"
    first = await next_frame(ws)
    assert first["type"] == "sync"
    body: dict[str, Any] = first["body"]
    return body


async def refusal(server: ServerProcess, **params: Any) -> tuple[int, dict[str, Any]]:
    """The HTTP status and Matrix error of a handshake the server refuses."""
    with pytest.raises(InvalidStatus) as refused:
        async with open_stream(server, None, **params):
            pass
    response = refused.value.response
    error: dict[str, Any] = json.loads(response.body or b"{}")
    return response.status_code, error


async def closed_with(ws: ClientConnection) -> tuple[int | None, list[Any]]:
    """Read until the server closes; its close code and the frames read meanwhile."""
    frames: list[Any] = []
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(WAIT):
            while True:
                frames.append(json.loads(await ws.recv()))
    received = closed.value.rcvd
    return (received.code if received is not None else None), frames


def message_texts(body: dict[str, Any], room_id: str) -> list[str]:
    room = body.get("rooms", {}).get("join", {}).get(room_id)
    if room is None:
        return []
    return [
        e["content"]["body"] for e in room["timeline"]["events"] if e["type"] == "m.room.message"
    ]


def join(server: ServerProcess, token: str, room_id: str) -> None:
    response = call(server, "POST", f"/join/{room_id}", token=token, body={})
    assert response.status == 200, response.body


def shared_room(server: ServerProcess, alice: str, bob: str) -> str:
    room_id = create_room(server, alice, preset="public_chat")
    join(server, bob, room_id)
    return room_id


def wait_until(check: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Any:
    with running_server(tmp_path, database_config) as process:
        yield process


# -- handshake ----------------------------------------------------------------------


def test_handshake_refusals_are_matrix_errors(server: ServerProcess) -> None:
    alice = register(server, "alice")["access_token"]

    async def scenario() -> None:
        status, error = await refusal(server)
        assert (status, error["errcode"]) == (401, "M_MISSING_TOKEN")
        status, error = await refusal(server, access_token="mhs_nonsense")
        assert (status, error["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        status, error = await refusal(server, access_token=alice, since="not a token")
        assert (status, error["errcode"]) == (400, "M_INVALID_PARAM")
        status, error = await refusal(server, access_token=alice, set_presence="busy")
        assert (status, error["errcode"]) == (400, "M_INVALID_PARAM")
        status, error = await refusal(server, access_token=alice, heartbeat_interval_ms="soon")
        assert (status, error["errcode"]) == (400, "M_INVALID_PARAM")
        status, error = await refusal(server, access_token=alice, full_state="yes")
        assert (status, error["errcode"]) == (400, "M_INVALID_PARAM")
        status, error = await refusal(server, access_token=alice, filter="{not json")
        assert (status, error["errcode"]) == (400, "M_NOT_JSON")
        status, error = await refusal(server, access_token=alice, filter='{"room": 1}')
        assert (status, error["errcode"]) == (400, "M_BAD_JSON")
        status, error = await refusal(server, access_token=alice, filter="12345")
        assert (status, error["errcode"]) == (404, "M_NOT_FOUND")

    run(scenario)


def test_a_plain_request_to_the_stream_path_is_a_matrix_error(server: ServerProcess) -> None:
    alice = register(server, "alice")["access_token"]
    response = server.request("GET", STREAM, headers={"Authorization": f"Bearer {alice}"})
    assert response.status == 400
    assert response.json()["errcode"] == "M_UNRECOGNIZED"
    assert response.headers["access-control-allow-origin"] == "*"
    response = server.request("POST", STREAM, json_body={})
    assert (response.status, response.json()["errcode"]) == (405, "M_UNRECOGNIZED")
    # Preflights are answered as on every other path.
    response = server.request("OPTIONS", STREAM)
    assert response.status == 200
    assert "GET" in response.headers["access-control-allow-methods"]
    # Every other path is served as before.
    assert call(server, "GET", "/nonexistent").json()["errcode"] == "M_UNRECOGNIZED"


def test_opening_a_stream_costs_a_sync_rate_limit_token(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(
        tmp_path, database_config, rc_sync={"per_second": 0.001, "burst_count": 1}
    ) as server:
        alice = register(server, "alice")["access_token"]

        async def scenario() -> None:
            async with open_stream(server, alice) as ws:
                await start(ws)
            status, error = await refusal(server, access_token=alice)
            assert (status, error["errcode"]) == (429, "M_LIMIT_EXCEEDED")
            assert error["retry_after_ms"] > 0

        run(scenario)


# -- sync frames --------------------------------------------------------------------


def test_the_first_frames_are_hello_and_a_sync_with_next_batch(server: ServerProcess) -> None:
    alice = register(server, "alice")["access_token"]
    room_id = create_room(server, alice, name="Hall")
    send_text(server, alice, room_id, "before", "t0")

    async def scenario() -> None:
        # The token in the header works as well as in the query string.
        headers = {"Authorization": f"Bearer {alice}"}
        async with open_stream(server, None, headers, heartbeat_interval_ms=10) as ws:
            hello = await next_frame(ws)
            # Clamped to the protocol's minimum.
            assert hello == {
                "type": "hello",
                "heartbeat_interval_ms": 1000,
                "heartbeat_timeout_ms": 3000,
            }
            first = await next_frame(ws)
            assert first["type"] == "sync"
            assert first["body"]["next_batch"].startswith("s")
            assert message_texts(first["body"], room_id) == ["before"]
        # From an up-to-date token the first frame comes at once, empty.
        since = sync(server, alice)["next_batch"]
        async with open_stream(server, alice, since=since) as ws:
            body = await start(ws)
            assert not body.get("rooms", {}).get("join")
            assert body["next_batch"]

    run(scenario)


def test_a_message_sent_over_http_arrives_as_a_frame(server: ServerProcess) -> None:
    alice = register(server, "alice")["access_token"]
    bob = register(server, "bob")["access_token"]
    room_id = shared_room(server, alice, bob)

    async def scenario() -> None:
        async with open_stream(server, alice) as ws:
            first = await start(ws)
            send_text(server, bob, room_id, "hello alice", "t1")
            # Other news may come first (say, Alice's own delivered receipt of Bob's join).
            texts: list[str] = []
            while not texts:
                frame = await frame_of_type(ws, "sync")
                texts = message_texts(frame["body"], room_id)
                assert frame["body"]["next_batch"] != first["next_batch"]
            assert texts == ["hello alice"]

    run(scenario)


def test_a_client_that_drops_and_resumes_from_its_last_next_batch_gets_each_event_once(
    server: ServerProcess,
) -> None:
    alice = register(server, "alice")["access_token"]
    bob = register(server, "bob")["access_token"]
    room_id = shared_room(server, alice, bob)
    received: list[str] = []

    async def read_until(ws: ClientConnection, last: str, since: str) -> str:
        while last not in received:
            frame = await frame_of_type(ws, "sync")
            received.extend(message_texts(frame["body"], room_id))
            since = frame["body"]["next_batch"]
        return str(since)

    async def scenario() -> None:
        async with open_stream(server, alice) as ws:
            since = str((await start(ws))["next_batch"])
            send_text(server, bob, room_id, "m0", "t0")
            send_text(server, bob, room_id, "m1", "t1")
            since = await read_until(ws, "m1", since)
            # Sent while the client is connected, never read: the connection drops
            # with the frame unread (or not yet computed).
            send_text(server, bob, room_id, "m2", "t2")
            ws.transport.abort()
        # Sent while disconnected.
        send_text(server, bob, room_id, "m3", "t3")
        send_text(server, bob, room_id, "m4", "t4")
        async with open_stream(server, alice, since=since) as ws:
            assert (await next_frame(ws))["type"] == "hello"
            since = await read_until(ws, "m4", since)
            # ... and while connected again.
            send_text(server, bob, room_id, "m5", "t5")
            await read_until(ws, "m5", since)
        assert received == ["m0", "m1", "m2", "m3", "m4", "m5"]

    run(scenario)


def test_to_device_messages_come_in_sync_frames_and_go_once_acked(server: ServerProcess) -> None:
    alice = register(server, "alice")
    bob = register(server, "bob")

    def send_to_bob(n: int) -> None:
        response = call(
            server,
            "PUT",
            f"/sendToDevice/m.dummy/txn{n}",
            token=alice["access_token"],
            body={"messages": {bob["user_id"]: {bob["device_id"]: {"n": n}}}},
        )
        assert response.status == 200, response.body

    def numbers(body: dict[str, Any]) -> list[int]:
        return [event["content"]["n"] for event in body["to_device"]["events"]]

    async def scenario() -> None:
        async with open_stream(server, bob["access_token"]) as ws:
            since = str((await start(ws))["next_batch"])
            send_to_bob(1)
            body: dict[str, Any] = {"to_device": {"events": []}}
            while not numbers(body):
                body = (await frame_of_type(ws, "sync"))["body"]
            assert body["to_device"]["events"] == [
                {"sender": alice["user_id"], "type": "m.dummy", "content": {"n": 1}}
            ]
            # Sent in a frame but not acknowledged: still there for a client that
            # resumes from the earlier token (the stream's own syncs never delete).
            async with open_stream(server, bob["access_token"], since=since) as again:
                assert numbers(await start(again)) == [1]
            await ws.send(json.dumps({"type": "ack", "id": 1, "next_batch": "nonsense"}))
            refused = await frame_of_type(ws, "error")
            assert (refused["errcode"], refused["id"]) == ("M_INVALID_PARAM", 1)
            await ws.send(json.dumps({"type": "ack", "id": 2, "next_batch": body["next_batch"]}))
            assert await frame_of_type(ws, "ok") == {"type": "ok", "id": 2}
        async with open_stream(server, bob["access_token"], since=since) as ws:
            assert numbers(await start(ws)) == []
        # Connecting with a token acknowledges it, as /sync does.
        send_to_bob(2)
        async with open_stream(server, bob["access_token"], since=since) as ws:
            body = await start(ws)
            assert numbers(body) == [2]
        async with open_stream(server, bob["access_token"], since=body["next_batch"]) as ws:
            assert numbers(await start(ws)) == []
        async with open_stream(server, bob["access_token"], since=since) as ws:
            assert numbers(await start(ws)) == []

    run(scenario)


# -- heartbeat and presence -----------------------------------------------------------


def test_ping_is_answered_with_pong(server: ServerProcess) -> None:
    alice = register(server, "alice")["access_token"]

    async def scenario() -> None:
        async with open_stream(server, alice) as ws:
            await start(ws)
            await ws.send(json.dumps({"type": "ping", "id": 7, "active": True}))
            assert await frame_of_type(ws, "pong") == {"type": "pong", "id": 7}
            await ws.send(json.dumps({"type": "ping", "id": "abc"}))
            assert await frame_of_type(ws, "pong") == {"type": "pong", "id": "abc"}
            await ws.send(json.dumps({"type": "ping"}))
            assert await frame_of_type(ws, "pong") == {"type": "pong"}

    run(scenario)


def test_a_client_that_stops_pinging_is_closed_and_goes_offline(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(
        tmp_path, database_config, presence={"sync_online_timeout": "1s"}
    ) as server:
        alice = register(server, "alice")["access_token"]
        bob = register(server, "bob")["access_token"]
        shared_room(server, alice, bob)

        def alice_presence() -> str:
            response = call(server, "GET", "/presence/@alice:localhost/status", token=bob)
            assert response.status == 200, response.body
            presence: str = response.json()["presence"]
            return presence

        async def scenario() -> None:
            async with open_stream(server, alice, heartbeat_interval_ms=1000) as ws:
                await start(ws)
                # Pings keep it open past the timeout...
                for _ in range(4):
                    await asyncio.sleep(1)
                    await ws.send(json.dumps({"type": "ping"}))
                    last_ping = time.monotonic()
                    await frame_of_type(ws, "pong")
                assert alice_presence() == "online"
                # ... and without them it is closed 3 intervals after the last frame.
                code, frames = await closed_with(ws)
                assert 2.5 < time.monotonic() - last_ping < 6
            assert code == 4000
            assert frames[-1] == {"type": "error", "errcode": "M_UNKNOWN", "error": "No heartbeat"}
            assert wait_until(lambda: alice_presence() == "offline")

        run(scenario)


# -- client frames -------------------------------------------------------------------


def test_typing_receipt_and_presence_frames_take_effect(server: ServerProcess) -> None:
    alice = register(server, "alice")["access_token"]
    bob = register(server, "bob")["access_token"]
    room_id = shared_room(server, alice, bob)
    event_id = send_text(server, bob, room_id, "read me", "t1").json()["event_id"]
    since = sync(server, bob)["next_batch"]

    def bob_sees(event_type: str) -> dict[str, Any]:
        nonlocal since
        for _ in range(20):
            body = sync(server, bob, f"?since={since}&timeout=2000")
            since = body["next_batch"]
            room = body.get("rooms", {}).get("join", {}).get(room_id, {})
            for event in room.get("ephemeral", {}).get("events", []):
                if event["type"] == event_type:
                    found: dict[str, Any] = event
                    return found
        raise AssertionError(f"{event_type} never arrived")

    async def scenario() -> None:
        async with open_stream(server, alice) as ws:
            await start(ws)
            await ws.send(
                json.dumps(
                    {
                        "type": "typing",
                        "id": 1,
                        "room_id": room_id,
                        "typing": True,
                        "timeout": 30000,
                    }
                )
            )
            assert await frame_of_type(ws, "ok") == {"type": "ok", "id": 1}
            assert bob_sees("m.typing")["content"]["user_ids"] == ["@alice:localhost"]
            await ws.send(
                json.dumps(
                    {
                        "type": "receipt",
                        "id": "r",
                        "room_id": room_id,
                        "receipt_type": "m.read",
                        "event_id": event_id,
                    }
                )
            )
            assert await frame_of_type(ws, "ok") == {"type": "ok", "id": "r"}
            receipt = bob_sees("m.receipt")["content"]
            assert "@alice:localhost" in receipt[event_id]["m.read"]
            await ws.send(
                json.dumps(
                    {"type": "presence", "id": 3, "presence": "unavailable", "status_msg": "lunch"}
                )
            )
            assert await frame_of_type(ws, "ok") == {"type": "ok", "id": 3}
            status = call(server, "GET", "/presence/@alice:localhost/status", token=bob).json()
            assert (status["presence"], status["status_msg"]) == ("unavailable", "lunch")

    run(scenario)


def test_a_bad_frame_gets_an_error_frame_and_the_connection_stays_open(
    server: ServerProcess,
) -> None:
    alice = register(server, "alice")["access_token"]
    bob = register(server, "bob")["access_token"]
    bobs_room = create_room(server, bob)

    async def refused(ws: ClientConnection, frame: str) -> dict[str, Any]:
        await ws.send(frame)
        answer = await frame_of_type(ws, "error")
        return answer

    async def scenario() -> None:
        async with open_stream(server, alice) as ws:
            await start(ws)
            assert (await refused(ws, "not json"))["errcode"] == "M_NOT_JSON"
            assert (await refused(ws, "[1]"))["errcode"] == "M_BAD_JSON"
            assert (await refused(ws, "[" * 200 + "]" * 200))["errcode"] == "M_BAD_JSON"
            assert (await refused(ws, '{"type": "ping", "id": [1]}'))["errcode"] == "M_BAD_JSON"
            unknown = await refused(ws, '{"type": "dance", "id": 1}')
            assert (unknown["errcode"], unknown["id"]) == ("M_UNRECOGNIZED", 1)
            not_joined = await refused(
                ws,
                json.dumps({"type": "typing", "id": 2, "room_id": bobs_room, "typing": False}),
            )
            assert (not_joined["errcode"], not_joined["id"]) == ("M_FORBIDDEN", 2)
            bad_room = await refused(
                ws, json.dumps({"type": "typing", "id": 3, "room_id": "nope", "typing": False})
            )
            assert bad_room["errcode"] == "M_INVALID_PARAM"
            missing = await refused(ws, json.dumps({"type": "receipt", "id": 4}))
            assert missing["errcode"] == "M_MISSING_PARAM"
            await ws.send(json.dumps({"type": "ping", "id": "still"}))
            assert await frame_of_type(ws, "pong") == {"type": "pong", "id": "still"}

    run(scenario)


def test_client_frames_are_rate_limited(server: ServerProcess) -> None:
    alice = register(server, "alice")["access_token"]

    async def scenario() -> None:
        async with open_stream(server, alice) as ws:
            await start(ws)
            for number in range(80):
                await ws.send(json.dumps({"type": "ping", "id": number}))
            answers: list[dict[str, Any]] = []
            for _ in range(80):
                frame = await next_frame(ws)
                if frame["type"] in ("pong", "error"):
                    answers.append(frame)
            limited = [a for a in answers if a["type"] == "error"]
            assert limited and all(a["errcode"] == "M_LIMIT_EXCEEDED" for a in limited)
            assert all(a["retry_after_ms"] > 0 for a in limited)
            assert len(answers) - len(limited) >= 50

    run(scenario)


def test_binary_and_oversized_frames_close_the_connection(server: ServerProcess) -> None:
    alice = register(server, "alice")["access_token"]

    async def scenario() -> None:
        async with open_stream(server, alice) as ws:
            await start(ws)
            await ws.send(b"\x00\x01")
            code, frames = await closed_with(ws)
            assert code == 1003
            assert frames[-1]["type"] == "error" and "id" not in frames[-1]
        async with open_stream(server, alice) as ws:
            await start(ws)
            await ws.send(json.dumps({"type": "ping", "pad": "x" * 70_000}))
            code, _ = await closed_with(ws)
            assert code == 1009

    run(scenario)


# -- auth expiry --------------------------------------------------------------------


def test_logging_out_closes_the_stream_with_4001(server: ServerProcess) -> None:
    alice = register(server, "alice")["access_token"]

    async def scenario() -> None:
        async with open_stream(server, alice) as ws:
            await start(ws)
            assert call(server, "POST", "/logout", token=alice, body={}).status == 200
            # The next frame the server would send (here a pong) finds the token gone.
            await ws.send(json.dumps({"type": "ping", "id": 1}))
            code, frames = await closed_with(ws)
        assert code == 4001
        assert frames == [
            {
                "type": "error",
                "errcode": "M_UNKNOWN_TOKEN",
                "error": "Unrecognised access token",
                "soft_logout": False,
            }
        ]

    run(scenario)


def test_shutting_down_closes_streams_with_1001(server: ServerProcess) -> None:
    alice = register(server, "alice")["access_token"]

    async def scenario() -> None:
        async with open_stream(server, alice) as ws:
            await start(ws)
            stopping = asyncio.create_task(asyncio.to_thread(server.stop))
            code, frames = await closed_with(ws)
            await stopping
        assert code == 1001
        assert frames == [
            {"type": "error", "errcode": "M_UNKNOWN", "error": "Server shutting down"}
        ]

    run(scenario)


# -- the HTTP connection underneath -------------------------------------------------


def test_a_stream_outlives_the_http_deadlines_and_holds_its_connection_slot(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    port = free_port()
    listener = {
        "port": port,
        "bind_addresses": ["127.0.0.1"],
        "type": "http",
        "resources": [{"names": ["client"]}],
        "request_header_timeout": "500ms",
        "idle_timeout": "500ms",
        "max_connections": 2,
    }
    with running_server(tmp_path, database_config, listeners=[listener]) as server:
        alice = register(server, "alice")["access_token"]

        def http_refused() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    return sock.recv(100) == b""
            except ConnectionResetError:
                return True

        async def scenario() -> None:
            async with open_stream(server, alice) as first:
                await start(first)
                # Well past the header and idle deadlines of an HTTP connection.
                await asyncio.sleep(1.5)
                await first.send(json.dumps({"type": "ping", "id": 1}))
                assert (await frame_of_type(first, "pong"))["id"] == 1
                async with open_stream(server, alice) as second:
                    await start(second)
                    # Two streams fill the listener's two slots...
                    assert http_refused()
                # ... and the slot of one that closed is free again.
                assert wait_until(lambda: not http_refused())

        run(scenario)


def test_versions_advertises_the_stream(server: ServerProcess) -> None:
    features = server.request("GET", "/_matrix/client/versions").json()["unstable_features"]
    assert features["dev.homeserver.stream"] is True
    assert features["dev.homeserver.delivered_receipts"] is True
