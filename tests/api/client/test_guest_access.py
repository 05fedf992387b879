"""Guest accounts and world-readable rooms, over HTTP against the real server.

spec: client-server-api/modules/guest_access.md, _index.md#history-visibility
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.client.test_rooms import create_room, send_text
from tests.support.matrix import PASSWORD, call, login, register, running_server
from tests.support.server_process import ServerProcess


@pytest.fixture
def guest_server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config, allow_guest_access=True) as server:
        yield server


def register_guest(server: ServerProcess, body: Any = None) -> dict[str, Any]:
    response = call(server, "POST", "/register?kind=guest", body=body if body is not None else {})
    assert response.status == 200, response.body
    result: dict[str, Any] = response.json()
    return result


def set_guest_access(server: ServerProcess, token: str, room_id: str, value: str) -> None:
    response = call(
        server,
        "PUT",
        f"/rooms/{room_id}/state/m.room.guest_access/",
        token=token,
        body={"guest_access": value},
    )
    assert response.status == 200, response.body


def membership_of(server: ServerProcess, token: str, room_id: str, user_id: str) -> str | None:
    response = call(
        server, "GET", f"/rooms/{room_id}/state/m.room.member/{quote(user_id)}", token=token
    )
    if response.status == 404:
        return None
    assert response.status == 200, response.body
    membership: str = response.json()["membership"]
    return membership


def test_guest_registration_is_refused_unless_allowed(open_server: ServerProcess) -> None:
    refused = call(open_server, "POST", "/register?kind=guest", body={})
    assert refused.status == 403
    assert refused.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"


def test_guest_registration_does_not_need_open_registration(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    # As Synapse: allow_guest_access alone lets guests in; ordinary sign-up stays closed.
    with running_server(
        tmp_path, database_config, enable_registration=False, allow_guest_access=True
    ) as server:
        guest = register_guest(server)
        assert call(server, "GET", "/account/whoami", token=guest["access_token"]).status == 200
        closed = call(server, "POST", "/register", body={"auth": {"type": "m.login.dummy"}})
        assert closed.status == 403
        assert closed.json()["errcode"] == "M_FORBIDDEN"


def test_guest_registration_ignores_everything_but_the_device_name(
    guest_server: ServerProcess,
) -> None:
    guest = register_guest(
        guest_server,
        {
            "username": "chosen",
            "password": PASSWORD,
            "device_id": "MYDEVICE",
            "initial_device_display_name": "Guest phone",
        },
    )
    localpart = guest["user_id"][1:].split(":")[0]
    # Generated numeric user IDs, as Synapse gives guests; the server picks the device.
    assert localpart.isdigit()
    assert guest["device_id"] != "MYDEVICE"
    whoami = call(guest_server, "GET", "/account/whoami", token=guest["access_token"])
    assert whoami.status == 200
    assert whoami.json()["user_id"] == guest["user_id"]
    device = call(
        guest_server, "GET", f"/devices/{guest['device_id']}", token=guest["access_token"]
    )
    assert device.status == 200
    assert device.json()["display_name"] == "Guest phone"
    # Guest registration needs no UIA, and a second guest is a different account.
    assert register_guest(guest_server)["user_id"] != guest["user_id"]


def test_guest_cannot_create_rooms(guest_server: ServerProcess) -> None:
    guest = register_guest(guest_server)
    token = guest["access_token"]
    me = quote(guest["user_id"])
    created = call(guest_server, "POST", "/createRoom", token=token, body={})
    assert created.status == 403
    assert created.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"
    # Endpoints the spec does not list for guests are all refused the same way...
    for method, path, body in [
        ("GET", "/capabilities", None),
        ("GET", "/joined_rooms", None),
        ("PUT", f"/profile/{me}/avatar_url", {"avatar_url": "mxc://x/y"}),
        ("PUT", f"/user/{me}/account_data/org.example", {}),
    ]:
        response = call(guest_server, method, path, token=token, body=body)
        assert response.status == 403, (path, response.body)
        assert response.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN", path
    # ...while the listed ones serve guests: their display name, /sync.
    renamed = call(
        guest_server,
        "PUT",
        f"/profile/{me}/displayname",
        token=token,
        body={"displayname": "Visitor"},
    )
    assert renamed.status == 200, renamed.body
    assert call(guest_server, "GET", "/sync", token=token).status == 200


def test_guest_can_join_only_rooms_with_guest_access_can_join(guest_server: ServerProcess) -> None:
    alice = register(guest_server, "alice")["access_token"]
    guest = register_guest(guest_server)
    guest_token, guest_id = guest["access_token"], guest["user_id"]
    room_id = create_room(guest_server, alice, preset="public_chat")
    refused = call(guest_server, "POST", f"/rooms/{room_id}/join", token=guest_token, body={})
    assert refused.status == 403
    assert refused.json()["errcode"] == "M_FORBIDDEN"
    assert membership_of(guest_server, alice, room_id, guest_id) is None

    set_guest_access(guest_server, alice, room_id, "can_join")
    joined = call(guest_server, "POST", f"/rooms/{room_id}/join", token=guest_token, body={})
    assert joined.status == 200, joined.body
    sent = send_text(guest_server, guest_token, room_id, "hello from a guest", "g1")
    assert sent.status == 200, sent.body
    messages = call(guest_server, "GET", f"/rooms/{room_id}/messages?dir=b", token=alice)
    assert "hello from a guest" in [e["content"].get("body") for e in messages.json()["chunk"]]

    # spec: when the room stops admitting guests, the server makes them leave.
    set_guest_access(guest_server, alice, room_id, "forbidden")
    assert membership_of(guest_server, alice, room_id, guest_id) == "leave"
    again = call(guest_server, "POST", f"/rooms/{room_id}/join", token=guest_token, body={})
    assert again.status == 403
    # Ordinary users are not affected by guest access.
    bob = register(guest_server, "bob")["access_token"]
    bob_join = call(guest_server, "POST", f"/rooms/{room_id}/join", token=bob, body={})
    assert bob_join.status == 200, bob_join.body


def test_non_member_reads_world_readable_room(guest_server: ServerProcess) -> None:
    alice_account = register(guest_server, "alice")
    alice = alice_account["access_token"]
    bob = register(guest_server, "bob")["access_token"]
    guest = register_guest(guest_server)["access_token"]
    room_id = create_room(
        guest_server,
        alice,
        name="Open book",
        initial_state=[
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "world_readable"},
            }
        ],
    )
    event_id = send_text(guest_server, alice, room_id, "readable by all", "t1").json()["event_id"]
    private_room = create_room(guest_server, alice)
    private_event = send_text(guest_server, alice, private_room, "secret", "t2").json()["event_id"]

    for reader in (bob, guest):
        messages = call(guest_server, "GET", f"/rooms/{room_id}/messages?dir=b", token=reader)
        assert messages.status == 200, messages.body
        assert "readable by all" in [e["content"].get("body") for e in messages.json()["chunk"]]
        state = call(guest_server, "GET", f"/rooms/{room_id}/state", token=reader)
        assert state.status == 200
        assert {"m.room.create", "m.room.name"} <= {e["type"] for e in state.json()}
        name = call(guest_server, "GET", f"/rooms/{room_id}/state/m.room.name/", token=reader)
        assert name.json() == {"name": "Open book"}
        event = call(guest_server, "GET", f"/rooms/{room_id}/event/{event_id}", token=reader)
        assert event.status == 200
        assert event.json()["content"]["body"] == "readable by all"
        context = call(guest_server, "GET", f"/rooms/{room_id}/context/{event_id}", token=reader)
        assert context.status == 200
        assert context.json()["event"]["event_id"] == event_id
        members = call(guest_server, "GET", f"/rooms/{room_id}/members", token=reader)
        assert members.status == 200
        assert [e["state_key"] for e in members.json()["chunk"]] == [alice_account["user_id"]]

        # A room that is not world-readable stays closed to non-members.
        for path in (
            f"/rooms/{private_room}/messages?dir=b",
            f"/rooms/{private_room}/state",
            f"/rooms/{private_room}/members",
        ):
            assert call(guest_server, "GET", path, token=reader).status == 403, path
        hidden = call(
            guest_server, "GET", f"/rooms/{private_room}/event/{private_event}", token=reader
        )
        assert hidden.status == 404


def test_guest_upgrades_to_a_full_account(guest_server: ServerProcess) -> None:
    guest = register_guest(guest_server)
    localpart = guest["user_id"][1:].split(":")[0]
    other = register_guest(guest_server)

    # Only the guest's own token may claim its user ID.
    stolen = call(
        guest_server,
        "POST",
        "/register",
        body={
            "username": localpart,
            "password": PASSWORD,
            "guest_access_token": other["access_token"],
            "auth": {"type": "m.login.dummy"},
        },
    )
    assert stolen.status == 403, stolen.body
    # Numeric user IDs stay reserved without a guest token.
    taken = call(
        guest_server,
        "POST",
        "/register",
        body={"username": localpart, "password": PASSWORD, "auth": {"type": "m.login.dummy"}},
    )
    assert taken.status == 400

    upgraded = register(guest_server, localpart, PASSWORD, guest_access_token=guest["access_token"])
    assert upgraded["user_id"] == guest["user_id"]
    created = call(guest_server, "POST", "/createRoom", token=upgraded["access_token"], body={})
    assert created.status == 200, created.body
    # The account is no longer a guest: its old token is a full one too, and the
    # password logs in.
    old = call(guest_server, "POST", "/createRoom", token=guest["access_token"], body={})
    assert old.status == 200, old.body
    assert login(guest_server, localpart)["user_id"] == guest["user_id"]
    # It cannot be upgraded twice.
    again = call(
        guest_server,
        "POST",
        "/register",
        body={
            "username": localpart,
            "password": PASSWORD,
            "guest_access_token": guest["access_token"],
            "auth": {"type": "m.login.dummy"},
        },
    )
    assert again.status == 403
