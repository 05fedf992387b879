"""The legacy event stream (``GET /events``) and ``GET /events/{eventId}``, over HTTP.

spec: client-server-api/_index.md#get_matrixclientv3events, #get_matrixclientv3eventseventid,
#peeking-events (``room_id``)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.api.client.test_rooms import create_room, send_text
from tests.support.http import Response
from tests.support.matrix import call, register, running_server
from tests.support.server_process import ServerProcess

WORLD_READABLE = [
    {
        "type": "m.room.history_visibility",
        "state_key": "",
        "content": {"history_visibility": "world_readable"},
    }
]


@pytest.fixture
def guest_server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config, allow_guest_access=True) as server:
        yield server


def current_token(server: ServerProcess, token: str) -> str:
    """A token for "now": what /events with no ``from`` and no timeout answers."""
    response = call(server, "GET", "/events?timeout=0", token=token)
    assert response.status == 200, response.body
    body = response.json()
    assert body["chunk"] == []
    end: str = body["end"]
    return end


def in_background(request: Callable[[], Response]) -> tuple[threading.Thread, list[Response]]:
    results: list[Response] = []
    thread = threading.Thread(target=lambda: results.append(request()))
    thread.start()
    return thread, results


def bodies(chunk: list[dict[str, Any]]) -> list[Any]:
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


def test_event_stream_wakes_on_a_message(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    since = current_token(open_server, alice)
    thread, results = in_background(
        lambda: call(open_server, "GET", f"/events?from={since}&timeout=20000", token=alice)
    )
    time.sleep(0.5)
    assert thread.is_alive(), "the stream answered before anything happened"
    started = time.monotonic()
    event_id = send_text(open_server, alice, room_id, "wake up", "t1").json()["event_id"]
    thread.join(15)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10
    body = results[0].json()
    assert results[0].status == 200, body
    assert body["start"] == since
    messages = [e for e in body["chunk"] if e["type"] == "m.room.message"]
    assert [(e["event_id"], e["room_id"]) for e in messages] == [(event_id, room_id)]

    # Going on from "end" gives only what is new since.
    send_text(open_server, alice, room_id, "second", "t2")
    following = call(
        open_server, "GET", f"/events?from={body['end']}&timeout=5000", token=alice
    ).json()
    assert bodies(following["chunk"]) == ["second"]
    assert following["start"] == body["end"]


def test_event_stream_times_out_empty_and_leaves_out_other_rooms(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    bobs_room = create_room(open_server, bob)
    since = current_token(open_server, alice)
    send_text(open_server, bob, bobs_room, "not for alice", "t1")
    started = time.monotonic()
    response = call(open_server, "GET", f"/events?from={since}&timeout=300", token=alice)
    assert response.status == 200
    assert response.json()["chunk"] == []
    assert time.monotonic() - started >= 0.25
    bad = call(open_server, "GET", "/events?from=nonsense", token=alice)
    assert bad.status == 400
    assert bad.json()["errcode"] == "M_INVALID_PARAM"


def test_event_stream_shows_an_invite(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob_account = register(open_server, "bob")
    room_id = create_room(open_server, alice)
    since = current_token(open_server, bob_account["access_token"])
    invited = call(
        open_server,
        "POST",
        f"/rooms/{room_id}/invite",
        token=alice,
        body={"user_id": bob_account["user_id"]},
    )
    assert invited.status == 200
    chunk = call(
        open_server,
        "GET",
        f"/events?from={since}&timeout=5000",
        token=bob_account["access_token"],
    ).json()["chunk"]
    assert [(e["type"], e["state_key"], e["content"]["membership"]) for e in chunk] == [
        ("m.room.member", bob_account["user_id"], "invite")
    ]


def test_event_stream_peeks_a_world_readable_room(guest_server: ServerProcess) -> None:
    alice = register(guest_server, "alice")["access_token"]
    bob = register(guest_server, "bob")["access_token"]
    guest = call(guest_server, "POST", "/register?kind=guest", body={}).json()["access_token"]
    open_room = create_room(guest_server, alice, initial_state=WORLD_READABLE)
    closed_room = create_room(guest_server, alice)

    for index, peeker in enumerate((bob, guest)):
        since = current_token(guest_server, alice)
        path = f"/events?room_id={open_room}&from={since}&timeout=20000"
        thread, results = in_background(partial(call, guest_server, "GET", path, token=peeker))
        time.sleep(0.5)
        assert thread.is_alive()
        send_text(guest_server, alice, open_room, "peek-a-boo", f"p{index}")
        thread.join(15)
        assert not thread.is_alive()
        assert results[0].status == 200, results[0].body
        assert bodies(results[0].json()["chunk"]) == ["peek-a-boo"]

        refused = call(
            guest_server, "GET", f"/events?room_id={closed_room}&timeout=0", token=peeker
        )
        assert refused.status == 403

    # Guests may use the stream only to preview a room.
    whole = call(guest_server, "GET", "/events?timeout=0", token=guest)
    assert whole.status == 400


def test_single_event_by_id_follows_history_visibility(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice)
    event_id = send_text(open_server, alice, room_id, "mine", "t1").json()["event_id"]
    seen = call(open_server, "GET", f"/events/{event_id}", token=alice)
    assert seen.status == 200, seen.body
    assert seen.json()["event_id"] == event_id
    assert seen.json()["room_id"] == room_id
    assert seen.json()["content"]["body"] == "mine"
    hidden = call(open_server, "GET", f"/events/{event_id}", token=bob)
    assert hidden.status == 404
    unknown = call(open_server, "GET", "/events/$nonexistent", token=alice)
    assert unknown.status == 404
    assert unknown.json()["errcode"] == "M_NOT_FOUND"
