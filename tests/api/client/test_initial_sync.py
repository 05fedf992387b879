"""``GET /initialSync`` and ``GET /rooms/{roomId}/initialSync``, over HTTP.

spec: client-server-api/_index.md#get_matrixclientv3initialsync,
#get_matrixclientv3roomsroomidinitialsync
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.api.client.test_rooms import create_room, send_text
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def initial_sync(server: ServerProcess, token: str, query: str = "") -> dict[str, Any]:
    response = call(server, "GET", f"/initialSync{query}", token=token)
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def room_of(body: dict[str, Any], room_id: str) -> dict[str, Any] | None:
    found = [room for room in body["rooms"] if room["room_id"] == room_id]
    assert len(found) <= 1
    return found[0] if found else None


def state_content(room: dict[str, Any], event_type: str, state_key: str = "") -> Any:
    for event in room["state"]:
        if event["type"] == event_type and event["state_key"] == state_key:
            return event["content"]
    return None


def bodies(chunk: list[dict[str, Any]]) -> list[Any]:
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


def test_initial_sync_lists_rooms_with_state_and_messages(open_server: ServerProcess) -> None:
    alice_account = register(open_server, "alice")
    alice, alice_id = alice_account["access_token"], alice_account["user_id"]
    bob_account = register(open_server, "bob")
    room_id = create_room(open_server, alice, name="Kitchen")
    for index, text in enumerate(["one", "two", "three"]):
        last = send_text(open_server, alice, room_id, text, f"t{index}").json()["event_id"]
    receipt = call(
        open_server, "POST", f"/rooms/{room_id}/receipt/m.read/{last}", token=alice, body={}
    )
    assert receipt.status == 200
    tagged = call(
        open_server,
        "PUT",
        f"/user/{quote(alice_id)}/rooms/{room_id}/tags/u.food",
        token=alice,
        body={"order": 0.5},
    )
    assert tagged.status == 200
    call(
        open_server,
        "PUT",
        f"/user/{quote(alice_id)}/account_data/org.example.settings",
        token=alice,
        body={"theme": "dark"},
    )
    invite_room = create_room(open_server, bob_account["access_token"], name="Elsewhere")
    invited = call(
        open_server,
        "POST",
        f"/rooms/{invite_room}/invite",
        token=bob_account["access_token"],
        body={"user_id": alice_id},
    )
    assert invited.status == 200

    body = initial_sync(open_server, alice, "?limit=2")
    # Alice's own presence (she has been active); Bob, who only invited her, shares
    # no joined room with her.
    assert [(e["sender"], e["content"]["presence"]) for e in body["presence"]] == [
        (alice_id, "online")
    ]
    assert {"type": "org.example.settings", "content": {"theme": "dark"}} in body["account_data"]
    room = room_of(body, room_id)
    assert room is not None
    assert room["membership"] == "join"
    assert room["visibility"] == "private"
    # The two latest messages, oldest first, each with its room.
    assert bodies(room["messages"]["chunk"]) == ["two", "three"]
    assert {e["room_id"] for e in room["messages"]["chunk"]} == {room_id}
    assert state_content(room, "m.room.name") == {"name": "Kitchen"}
    assert state_content(room, "m.room.member", alice_id)["membership"] == "join"
    assert {"type": "m.tag", "content": {"tags": {"u.food": {"order": 0.5}}}} in room[
        "account_data"
    ]
    receipts = [r for r in body["receipts"] if r["room_id"] == room_id]
    assert receipts and last in receipts[0]["content"]
    # "start" pages back through the rest with /messages.
    earlier = call(
        open_server,
        "GET",
        f"/rooms/{room_id}/messages?dir=b&limit=1&from={room['messages']['start']}",
        token=alice,
    ).json()
    assert bodies(earlier["chunk"]) == ["one"]

    invite = room_of(body, invite_room)
    assert invite is not None
    assert invite["membership"] == "invite"
    assert invite["invite"]["sender"] == bob_account["user_id"]
    assert invite["invite"]["content"]["membership"] == "invite"

    # "end" is where the event stream goes on from.
    send_text(open_server, alice, room_id, "four", "t9")
    stream = call(open_server, "GET", f"/events?from={body['end']}&timeout=5000", token=alice)
    assert bodies(stream.json()["chunk"]) == ["four"]


def test_archived_initial_sync_shows_left_rooms_at_the_leave(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob_account = register(open_server, "bob")
    bob, bob_id = bob_account["access_token"], bob_account["user_id"]
    room_id = create_room(open_server, alice, preset="public_chat", name="Before")
    assert call(open_server, "POST", f"/rooms/{room_id}/join", token=bob, body={}).status == 200
    send_text(open_server, alice, room_id, "while bob was here", "t1")
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=bob, body={}).status == 200
    renamed = call(
        open_server,
        "PUT",
        f"/rooms/{room_id}/state/m.room.name/",
        token=alice,
        body={"name": "After"},
    )
    assert renamed.status == 200
    send_text(open_server, alice, room_id, "after bob left", "t2")

    assert room_of(initial_sync(open_server, bob), room_id) is None
    room = room_of(initial_sync(open_server, bob, "?archived=true"), room_id)
    assert room is not None
    assert room["membership"] == "leave"
    assert state_content(room, "m.room.name") == {"name": "Before"}
    assert state_content(room, "m.room.member", bob_id)["membership"] == "leave"
    chunk = room["messages"]["chunk"]
    assert "while bob was here" in bodies(chunk)
    assert "after bob left" not in bodies(chunk)
    assert (chunk[-1]["type"], chunk[-1]["state_key"]) == ("m.room.member", bob_id)

    # The room's own initialSync shows the same view to its former member.
    single = call(open_server, "GET", f"/rooms/{room_id}/initialSync", token=bob)
    assert single.status == 200, single.body
    assert single.json()["membership"] == "leave"
    assert state_content(single.json(), "m.room.name") == {"name": "Before"}
    assert "after bob left" not in bodies(single.json()["messages"]["chunk"])


def test_room_initial_sync_for_members_and_world_readable_rooms(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    private_room = create_room(open_server, alice, name="Private")
    send_text(open_server, alice, private_room, "hello", "t1")
    member_view = call(open_server, "GET", f"/rooms/{private_room}/initialSync", token=alice)
    assert member_view.status == 200
    body = member_view.json()
    assert body["room_id"] == private_room
    assert body["membership"] == "join"
    assert bodies(body["messages"]["chunk"]) == ["hello"]
    assert state_content(body, "m.room.name") == {"name": "Private"}
    assert call(open_server, "GET", f"/rooms/{private_room}/initialSync", token=bob).status == 403

    public_room = create_room(
        open_server,
        alice,
        initial_state=[
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "world_readable"},
            }
        ],
    )
    send_text(open_server, alice, public_room, "for everyone", "t2")
    peek = call(open_server, "GET", f"/rooms/{public_room}/initialSync?limit=5", token=bob)
    assert peek.status == 200, peek.body
    assert bodies(peek.json()["messages"]["chunk"]) == ["for everyone"]
    assert len(peek.json()["messages"]["chunk"]) <= 5
    assert call(open_server, "GET", "/initialSync?limit=-1", token=alice).status == 400
    assert call(open_server, "GET", "/initialSync?archived=maybe", token=alice).status == 400
