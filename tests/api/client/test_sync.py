"""/sync over HTTP: initial, incremental, long-poll wake-up, invites, leaves, filters."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import quote

from tests.api.client.test_rooms import create_room, send_text
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def sync(server: ServerProcess, token: str, query: str = "") -> dict[str, Any]:
    response = call(server, "GET", f"/sync{query}", token=token)
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def timeline_texts(body: dict[str, Any], room_id: str) -> list[str]:
    events = body["rooms"]["join"][room_id]["timeline"]["events"]
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]


def test_initial_sync_has_state_and_recent_timeline(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, name="Hall")
    for i in range(12):
        send_text(open_server, alice, room_id, f"m{i}", f"t{i}")
    body = sync(open_server, alice)
    room = body["rooms"]["join"][room_id]
    assert timeline_texts(body, room_id) == [f"m{i}" for i in range(2, 12)]
    assert room["timeline"]["limited"] is True
    state_types = {e["type"] for e in room["state"]["events"]}
    assert {"m.room.create", "m.room.name", "m.room.member"} <= state_types
    # prev_batch continues into /messages.
    earlier = call(
        open_server,
        "GET",
        f"/rooms/{room_id}/messages?from={room['timeline']['prev_batch']}&limit=2",
        token=alice,
    ).json()
    assert [e["content"]["body"] for e in earlier["chunk"]] == ["m1", "m0"]
    assert room["unread_notifications"] == {"highlight_count": 0, "notification_count": 0}


def test_incremental_sync_has_only_new_events(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    first = sync(open_server, alice)
    send_text(open_server, alice, room_id, "new", "t1")
    body = sync(open_server, alice, f"?since={first['next_batch']}")
    assert timeline_texts(body, room_id) == ["new"]
    assert body["rooms"]["join"][room_id]["timeline"]["limited"] is False
    assert body["rooms"]["join"][room_id]["state"]["events"] == []
    # Nothing new: nothing in rooms.
    quiet = sync(open_server, alice, f"?since={body['next_batch']}")
    assert quiet["rooms"] == {}


def test_long_poll_wakes_when_a_message_arrives(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    since = sync(open_server, bob)["next_batch"]
    result: dict[str, Any] = {}

    def wait() -> None:
        response = call(open_server, "GET", f"/sync?since={since}&timeout=20000", token=bob)
        result["body"] = response.json()
        result["returned_at"] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)
    assert "body" not in result  # still waiting
    send_text(open_server, alice, room_id, "wake up", "t1")
    waiter.join(timeout=15)
    assert timeline_texts(result["body"], room_id) == ["wake up"]


def test_long_poll_times_out_with_an_empty_answer(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    since = sync(open_server, alice)["next_batch"]
    body = sync(open_server, alice, f"?since={since}&timeout=300")
    assert body["rooms"] == {}
    assert body["next_batch"]


def test_invites_and_leaves_appear_in_sync(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, name="Secret club")
    since = sync(open_server, bob)["next_batch"]
    call(
        open_server,
        "POST",
        f"/rooms/{room_id}/invite",
        token=alice,
        body={"user_id": "@bob:localhost"},
    )
    body = sync(open_server, bob, f"?since={since}&timeout=5000")
    invite_state = body["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert {
        "type": "m.room.name",
        "state_key": "",
        "content": {"name": "Secret club"},
        "sender": "@alice:localhost",
    } in invite_state
    assert any(
        e["type"] == "m.room.member" and e["content"]["membership"] == "invite"
        for e in invite_state
    )
    call(open_server, "POST", f"/rooms/{room_id}/join", token=bob, body={})
    joined = sync(open_server, bob, f"?since={body['next_batch']}")
    assert room_id in joined["rooms"]["join"]
    assert any(
        e["type"] == "m.room.name"
        for e in joined["rooms"]["join"][room_id]["state"]["events"]
        + joined["rooms"]["join"][room_id]["timeline"]["events"]
    )
    call(
        open_server,
        "POST",
        f"/rooms/{room_id}/kick",
        token=alice,
        body={"user_id": "@bob:localhost"},
    )
    left = sync(open_server, bob, f"?since={joined['next_batch']}")
    leave_timeline = left["rooms"]["leave"][room_id]["timeline"]["events"]
    assert leave_timeline[-1]["content"]["membership"] == "leave"
    # A later message is not shown to the kicked user.
    send_text(open_server, alice, room_id, "after the kick", "t1")
    later = sync(open_server, bob, f"?since={left['next_batch']}")
    assert room_id not in later["rooms"].get("leave", {})
    assert room_id not in later["rooms"].get("join", {})


def test_filters_limit_and_lazy_load_members(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    for token in (bob, carol):
        call(open_server, "POST", f"/join/{room_id}", token=token, body={})
    for i in range(5):
        send_text(open_server, bob, room_id, f"b{i}", f"t{i}")
    inline = quote(
        json.dumps(
            {
                "room": {
                    "timeline": {"limit": 2, "lazy_load_members": True},
                    "state": {"lazy_load_members": True},
                }
            }
        )
    )
    body = sync(open_server, alice, f"?filter={inline}")
    room = body["rooms"]["join"][room_id]
    assert timeline_texts(body, room_id) == ["b3", "b4"]
    members = {e["state_key"] for e in room["state"]["events"] if e["type"] == "m.room.member"}
    assert members == {"@alice:localhost", "@bob:localhost"}  # not carol
    stored = call(
        open_server,
        "POST",
        "/user/@alice:localhost/filter",
        token=alice,
        body={"room": {"rooms": []}},
    ).json()["filter_id"]
    assert sync(open_server, alice, f"?filter={stored}")["rooms"] == {}
    bad = call(open_server, "GET", "/sync?filter=%7Bbroken", token=alice)
    assert bad.status == 400
    unknown = call(open_server, "GET", "/sync?filter=99999", token=alice)
    assert unknown.status == 400
    bad_since = call(open_server, "GET", "/sync?since=garbage", token=alice)
    assert (bad_since.status, bad_since.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_account_data_and_unread_counts_in_sync(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    since = sync(open_server, bob)["next_batch"]
    call(
        open_server,
        "PUT",
        "/user/@bob:localhost/account_data/im.example.theme",
        token=bob,
        body={"theme": "dark"},
    )
    event_id = send_text(open_server, alice, room_id, "hi bob", "t1").json()["event_id"]
    body = sync(open_server, bob, f"?since={since}")
    assert {"type": "im.example.theme", "content": {"theme": "dark"}} in body["account_data"][
        "events"
    ]
    assert body["rooms"]["join"][room_id]["unread_notifications"]["notification_count"] == 1
    receipt = call(
        open_server, "POST", f"/rooms/{room_id}/receipt/m.read/{event_id}", token=bob, body={}
    )
    assert receipt.status == 200, receipt.body
    after = sync(open_server, bob, f"?since={body['next_batch']}")
    room = after["rooms"]["join"][room_id]
    assert room["unread_notifications"]["notification_count"] == 0
    receipts = [e for e in room["ephemeral"]["events"] if e["type"] == "m.receipt"]
    assert "@bob:localhost" in receipts[0]["content"][event_id]["m.read"]
