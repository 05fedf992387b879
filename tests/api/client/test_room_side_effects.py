"""Rooms reacting to account changes: profiles, deactivation, ignored users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_sync import sync
from tests.support.accounts import register_with_secret
from tests.support.matrix import call, login, register, running_server
from tests.support.server_process import ServerProcess


def member_content(server: ServerProcess, token: str, room_id: str, user: str) -> dict[str, Any]:
    response = call(server, "GET", f"/rooms/{room_id}/state/m.room.member/{user}", token=token)
    assert response.status == 200, response.body
    content: dict[str, Any] = response.json()
    return content


def test_display_name_changes_reach_every_joined_room(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    rooms = [create_room(open_server, alice) for _ in range(2)]
    put = call(
        open_server,
        "PUT",
        "/profile/@alice:localhost/displayname",
        token=alice,
        body={"displayname": "Alice Liddell"},
    )
    assert put.status == 200
    for room_id in rooms:
        content = member_content(open_server, alice, room_id, "@alice:localhost")
        assert content == {"membership": "join", "displayname": "Alice Liddell"}
    # New joins carry the profile too.
    bob = register(open_server, "bob")["access_token"]
    call(
        open_server,
        "PUT",
        "/profile/@bob:localhost/displayname",
        token=bob,
        body={"displayname": "Bob"},
    )
    public = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/join/{public}", token=bob, body={})
    assert member_content(open_server, alice, public, "@bob:localhost")["displayname"] == "Bob"


def test_deactivated_users_leave_their_rooms(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    deactivate = call(
        open_server,
        "POST",
        "/account/deactivate",
        token=bob,
        body={
            "auth": {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": "bob"},
                "password": "correct horse battery",
            }
        },
    )
    assert deactivate.status == 200, deactivate.body
    assert member_content(open_server, alice, room_id, "@bob:localhost")["membership"] == "leave"
    joined = call(open_server, "GET", f"/rooms/{room_id}/joined_members", token=alice).json()
    assert list(joined["joined"]) == ["@alice:localhost"]


def test_ignored_users_messages_and_invites_are_hidden(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    ignore = call(
        open_server,
        "PUT",
        "/user/@bob:localhost/account_data/m.ignored_user_list",
        token=bob,
        body={"ignored_users": {"@alice:localhost": {}}},
    )
    assert ignore.status == 200
    send_text(open_server, alice, room_id, "you cannot hear me", "t1")
    page = call(open_server, "GET", f"/rooms/{room_id}/messages?limit=50", token=bob).json()
    assert not [e for e in page["chunk"] if e["type"] == "m.room.message"]
    private = create_room(open_server, alice)
    call(
        open_server,
        "POST",
        f"/rooms/{private}/invite",
        token=alice,
        body={"user_id": "@bob:localhost"},
    )
    body = sync(open_server, bob)
    assert private not in body["rooms"].get("invite", {})
    timeline = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert not [e for e in timeline if e["type"] == "m.room.message"]


def test_full_state_resends_the_whole_state(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, name="Full")
    since = sync(open_server, alice)["next_batch"]
    body = sync(open_server, alice, f"?since={since}&full_state=true")
    state_types = {e["type"] for e in body["rooms"]["join"][room_id]["state"]["events"]}
    assert {"m.room.create", "m.room.name", "m.room.power_levels"} <= state_types


def test_messages_are_rate_limited_per_user_but_not_for_admins(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(
        tmp_path, database_config, rc_message={"per_second": 0.001, "burst_count": 3}
    ) as server:
        alice = register(server, "alice")["access_token"]
        room_id = create_room(server, alice, preset="public_chat")
        statuses = [send_text(server, alice, room_id, "x", f"t{i}").status for i in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert register_with_secret(server, "root", admin=True).status == 200
        root = login(server, "root", "correct horse")["access_token"]
        call(server, "POST", f"/join/{room_id}", token=root, body={})
        admin_statuses = [send_text(server, root, room_id, "y", f"a{i}").status for i in range(5)]
        assert admin_statuses == [200] * 5
