"""A departed member reads the room as it was when they left; /members filters.

spec: client-server-api/_index.md#get_matrixclientv3roomsroomidmembers ("If you have
left the room then this will be the members of the room when you left"),
#get_matrixclientv3roomsroomidstateeventtypestatekey
"""

from __future__ import annotations

from typing import Any

from tests.api.client.test_rooms import create_public_room_with_history, create_room, send_text
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def members_of(chunk: list[dict[str, Any]]) -> dict[str, str]:
    return {e["state_key"]: e["content"]["membership"] for e in chunk}


def _room_bob_left(server: ServerProcess) -> tuple[str, str, str, str]:
    """alice's public room which bob joined and left; carol joins after bob left."""
    alice = register(server, "alice")["access_token"]
    bob = register(server, "bob")["access_token"]
    carol = register(server, "carol")["access_token"]
    room_id = create_room(server, alice, preset="public_chat", name="Before")
    assert call(server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    assert call(server, "POST", f"/rooms/{room_id}/leave", token=bob, body={}).status == 200
    assert call(server, "POST", f"/join/{room_id}", token=carol, body={}).status == 200
    renamed = call(
        server, "PUT", f"/rooms/{room_id}/state/m.room.name", token=alice, body={"name": "After"}
    )
    assert renamed.status == 200, renamed.body
    return room_id, alice, bob, carol


def test_departed_member_sees_their_own_leave_in_room_state(open_server: ServerProcess) -> None:
    room_id, _alice, bob, _carol = _room_bob_left(open_server)
    own = call(
        open_server, "GET", f"/rooms/{room_id}/state/m.room.member/@bob:localhost", token=bob
    )
    assert own.status == 200, own.body
    assert own.json()["membership"] == "leave"
    # The rest of the state is frozen at the leave too: the later rename is not shown.
    name = call(open_server, "GET", f"/rooms/{room_id}/state/m.room.name", token=bob)
    assert name.json() == {"name": "Before"}
    full = call(open_server, "GET", f"/rooms/{room_id}/state", token=bob).json()
    state = {(e["type"], e["state_key"]): e["content"] for e in full}
    assert state[("m.room.member", "@bob:localhost")]["membership"] == "leave"
    assert ("m.room.member", "@carol:localhost") not in state


def test_departed_member_lists_members_as_of_their_leave(open_server: ServerProcess) -> None:
    room_id, alice, bob, _carol = _room_bob_left(open_server)
    response = call(open_server, "GET", f"/rooms/{room_id}/members", token=bob)
    assert response.status == 200, response.body
    assert members_of(response.json()["chunk"]) == {
        "@alice:localhost": "join",
        "@bob:localhost": "leave",
    }
    # A current member sees carol, who joined after bob left.
    current = call(open_server, "GET", f"/rooms/{room_id}/members", token=alice).json()
    assert members_of(current["chunk"])["@carol:localhost"] == "join"


def test_members_at_a_token_cannot_reach_past_the_leave(open_server: ServerProcess) -> None:
    room_id, _alice, bob, _carol = _room_bob_left(open_server)
    # A token from now, after carol joined: bob still only sees the room at his leave.
    now = call(open_server, "GET", "/sync?timeout=0", token=bob).json()["next_batch"]
    response = call(open_server, "GET", f"/rooms/{room_id}/members?at={now}", token=bob)
    assert response.status == 200, response.body
    assert "@carol:localhost" not in members_of(response.json()["chunk"])


def test_members_at_a_sync_token(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    send_text(open_server, alice, room_id, "hello", "t1")
    before_bob = call(open_server, "GET", "/sync?timeout=0", token=alice).json()["next_batch"]
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    send_text(open_server, alice, room_id, "hi bob", "t2")
    # A limited incremental sync's prev_batch sits before its first timeline event.
    limited_filter = '{"room":{"timeline":{"limit":1}}}'
    later = call(
        open_server,
        "GET",
        f"/sync?timeout=0&since={before_bob}&filter={limited_filter}",
        token=alice,
    ).json()
    timeline = later["rooms"]["join"][room_id]["timeline"]
    assert timeline["limited"] is True
    assert call(open_server, "POST", f"/join/{room_id}", token=carol, body={}).status == 200

    def at(token: str) -> dict[str, str]:
        response = call(open_server, "GET", f"/rooms/{room_id}/members?at={token}", token=alice)
        assert response.status == 200, response.body
        return members_of(response.json()["chunk"])

    assert at(before_bob) == {"@alice:localhost": "join"}
    assert at(timeline["prev_batch"]) == {"@alice:localhost": "join", "@bob:localhost": "join"}
    now = call(open_server, "GET", f"/rooms/{room_id}/members", token=alice).json()
    assert members_of(now["chunk"])["@carol:localhost"] == "join"


def test_members_at_a_point_hidden_by_history_visibility_is_forbidden(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_public_room_with_history(open_server, alice, "joined")
    send_text(open_server, alice, room_id, "before bob", "t1")
    before = call(open_server, "GET", "/sync?timeout=0", token=alice).json()["next_batch"]
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    refused = call(open_server, "GET", f"/rooms/{room_id}/members?at={before}", token=bob)
    assert (refused.status, refused.json()["errcode"]) == (403, "M_FORBIDDEN")


def test_members_membership_filters_follow_the_spec(open_server: ServerProcess) -> None:
    room_id, alice, _bob, _carol = _room_bob_left(open_server)
    invite = call(
        open_server,
        "POST",
        f"/rooms/{room_id}/invite",
        token=alice,
        body={"user_id": "@dave:localhost"},
    )
    assert invite.status == 200, invite.body

    def listed(query: str) -> dict[str, str]:
        response = call(open_server, "GET", f"/rooms/{room_id}/members?{query}", token=alice)
        assert response.status == 200, response.body
        return members_of(response.json()["chunk"])

    everyone = {
        "@alice:localhost": "join",
        "@bob:localhost": "leave",
        "@carol:localhost": "join",
        "@dave:localhost": "invite",
    }
    assert listed("") == everyone
    assert listed("membership=join") == {"@alice:localhost": "join", "@carol:localhost": "join"}
    assert listed("not_membership=join") == {
        "@bob:localhost": "leave",
        "@dave:localhost": "invite",
    }
    # Both together are an "or": membership *is* invite or *is not* leave.
    assert listed("membership=invite&not_membership=leave") == {
        key: value for key, value in everyone.items() if value != "leave"
    }
    # ... so with the same value in both, nobody is left out.
    assert listed("membership=leave&not_membership=leave") == everyone
    bad = call(open_server, "GET", f"/rooms/{room_id}/members?membership=gone", token=alice)
    assert (bad.status, bad.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_joined_members_uses_display_name(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    profile = call(
        open_server,
        "PUT",
        "/profile/@alice:localhost/displayname",
        token=alice,
        body={"displayname": "Alice A."},
    )
    assert profile.status == 200, profile.body
    room_id = create_room(open_server, alice)
    response = call(open_server, "GET", f"/rooms/{room_id}/joined_members", token=alice)
    assert response.status == 200, response.body
    assert response.json() == {"joined": {"@alice:localhost": {"display_name": "Alice A."}}}
