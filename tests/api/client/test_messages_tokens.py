"""/messages with tokens from /sync, and lazy-loaded members in its ``state``.

spec: client-server-api/_index.md#get_matrixclientv3roomsroomidmessages (``from``: "a
token ... returned ... by the sync endpoint"; ``end``; ``state`` with
``lazy_load_members``), #lazy-loading-room-members
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.api.client.test_rooms import create_room, send_text
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def messages(server: ServerProcess, token: str, room_id: str, query: str) -> dict[str, Any]:
    """``GET /rooms/{room_id}/messages?{query}``, which must succeed."""
    page = call(server, "GET", f"/rooms/{room_id}/messages?{query}", token=token)
    assert page.status == 200, page.body
    body: dict[str, Any] = page.json()
    return body


def texts(chunk: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in chunk if e["type"] == "m.room.message"]


def test_a_sync_next_batch_token_pages_messages_with_an_end(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    for index in range(3):
        send_text(open_server, alice, room_id, f"m{index}", f"t{index}")
    next_batch = call(open_server, "GET", "/sync?timeout=0", token=alice).json()["next_batch"]
    body = messages(open_server, alice, room_id, f"dir=b&limit=100&from={next_batch}")
    assert body["start"] == next_batch
    assert texts(body["chunk"]) == ["m2", "m1", "m0"]
    assert "end" in body
    # The end token goes on from there: nothing is left before the room's creation.
    rest = messages(open_server, alice, room_id, f"dir=b&limit=100&from={body['end']}")
    assert rest["chunk"] == [] and "end" not in rest
    # Forwards from next_batch: nothing new yet, then the next message.
    send_text(open_server, alice, room_id, "m3", "t3")
    forward = messages(open_server, alice, room_id, f"dir=f&from={next_batch}")
    assert texts(forward["chunk"]) == ["m3"]
    assert "end" in forward


def test_messages_back_from_a_sync_prev_batch_returns_earlier_events(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    for index in range(5):
        send_text(open_server, alice, room_id, f"m{index}", f"t{index}")
    small = quote(json.dumps({"room": {"timeline": {"limit": 2}}}))
    synced = call(open_server, "GET", f"/sync?timeout=0&filter={small}", token=alice).json()
    timeline = synced["rooms"]["join"][room_id]["timeline"]
    assert texts(timeline["events"]) == ["m3", "m4"]
    assert timeline["limited"] is True
    earlier = messages(open_server, alice, room_id, f"dir=b&limit=3&from={timeline['prev_batch']}")
    assert texts(earlier["chunk"]) == ["m2", "m1", "m0"]


def test_lazy_loading_messages_returns_the_senders_members(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    for token in (bob, carol):
        assert call(open_server, "POST", f"/join/{room_id}", token=token, body={}).status == 200
    send_text(open_server, alice, room_id, "from alice", "t1")
    send_text(open_server, bob, room_id, "from bob", "t2")
    lazy = quote(json.dumps({"lazy_load_members": True, "types": ["m.room.message"]}))
    body = messages(open_server, carol, room_id, f"dir=b&limit=10&filter={lazy}")
    assert texts(body["chunk"]) == ["from bob", "from alice"]
    members = {
        e["state_key"]: e["content"]["membership"]
        for e in body["state"]
        if e["type"] == "m.room.member"
    }
    # The two senders, not carol who sent nothing in this page.
    assert members == {"@alice:localhost": "join", "@bob:localhost": "join"}


def test_lazy_loading_includes_a_sender_who_joined_within_the_page(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    dave = register(open_server, "dave")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    send_text(open_server, alice, room_id, "before dave", "t1")
    assert call(open_server, "POST", f"/join/{room_id}", token=dave, body={}).status == 200
    send_text(open_server, dave, room_id, "dave here", "t2")
    lazy = quote(json.dumps({"lazy_load_members": True, "types": ["m.room.message"]}))
    body = messages(open_server, alice, room_id, f"dir=b&filter={lazy}")
    assert texts(body["chunk"]) == ["dave here", "before dave"]
    senders = {e["state_key"] for e in body["state"] if e["type"] == "m.room.member"}
    assert senders == {"@alice:localhost", "@dave:localhost"}
