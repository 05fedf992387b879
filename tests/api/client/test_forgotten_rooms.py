"""A forgotten room is gone; the leave before the forget still reaches other devices.

spec: client-server-api/_index.md#post_matrixclientv3roomsroomidforget ("a user will
no longer be able to retrieve history for this room"), #get_matrixclientv3sync
"""

from __future__ import annotations

from tests.api.client.test_rooms import create_room, send_text
from tests.support.matrix import call, login, register
from tests.support.server_process import ServerProcess


def test_messages_of_a_forgotten_room_are_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    send_text(open_server, alice, room_id, "hello", "t1")
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=bob, body={}).status == 200
    # Left but not forgotten: history up to the leave is still there.
    before = call(open_server, "GET", f"/rooms/{room_id}/messages?dir=b", token=bob)
    assert before.status == 200, before.body
    assert call(open_server, "POST", f"/rooms/{room_id}/forget", token=bob, body={}).status == 200
    for path in (
        f"/rooms/{room_id}/messages?dir=b",
        f"/rooms/{room_id}/state",
        f"/rooms/{room_id}/members",
    ):
        refused = call(open_server, "GET", path, token=bob)
        assert (refused.status, refused.json()["errcode"]) == (403, "M_FORBIDDEN"), path
    # Rejoining brings the room back.
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    assert call(open_server, "GET", f"/rooms/{room_id}/messages?dir=b", token=bob).status == 200


def test_leave_reaches_other_devices_after_a_forget(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    phone = register(open_server, "bob", device_id="PHONE")["access_token"]
    laptop = login(open_server, "bob", device_id="LAPTOP")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    assert call(open_server, "POST", f"/join/{room_id}", token=phone, body={}).status == 200
    since = call(open_server, "GET", "/sync?timeout=0", token=laptop).json()["next_batch"]
    # The phone leaves and forgets before the laptop syncs again.
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=phone, body={}).status == 200
    assert call(open_server, "POST", f"/rooms/{room_id}/forget", token=phone, body={}).status == 200
    later = call(open_server, "GET", f"/sync?timeout=0&since={since}", token=laptop).json()
    left = later.get("rooms", {}).get("leave", {})
    assert room_id in left, later
    events = left[room_id]["timeline"]["events"]
    assert any(
        e["type"] == "m.room.member"
        and e["state_key"] == "@bob:localhost"
        and e["content"]["membership"] == "leave"
        for e in events
    )
    # Once past the leave, the forgotten room does not come back.
    after = call(
        open_server, "GET", f"/sync?timeout=0&since={later['next_batch']}", token=laptop
    ).json()
    assert room_id not in after.get("rooms", {}).get("leave", {})
    initial = call(
        open_server,
        "GET",
        "/sync?timeout=0&filter=" + '{"room":{"include_leave":true}}',
        token=laptop,
    ).json()
    assert room_id not in initial.get("rooms", {}).get("leave", {})
