"""What a client puts in a join's body ends up in its member event.

spec: client-server-api/_index.md#post_matrixclientv3joinroomidoralias,
#post_matrixclientv3roomsroomidjoin (Synapse copies the body's other keys into the
member event content too; the server keeps the keys it sets).
"""

from __future__ import annotations

from typing import Any

from tests.api.client.test_rooms import create_room
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def member_content(server: ServerProcess, token: str, room_id: str, user_id: str) -> Any:
    response = call(server, "GET", f"/rooms/{room_id}/state/m.room.member/{user_id}", token=token)
    assert response.status == 200, response.body
    return response.json()


def test_extra_keys_of_a_join_body_are_kept_in_the_member_event(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    body = {"reason": "to say hi", "foo": "bar", "nested": {"n": 1}}
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body=body).status == 200
    content = member_content(open_server, alice, room_id, "@bob:localhost")
    assert content["membership"] == "join"
    assert content["reason"] == "to say hi"
    assert content["foo"] == "bar"
    assert content["nested"] == {"n": 1}
    # The same through /rooms/{roomId}/join.
    joined = call(open_server, "POST", f"/rooms/{room_id}/join", token=carol, body={"foo": "baz"})
    assert joined.status == 200, joined.body
    assert member_content(open_server, alice, room_id, "@carol:localhost")["foo"] == "baz"


def test_a_join_body_cannot_set_the_keys_the_server_sets(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    body = {
        "membership": "ban",
        "join_authorised_via_users_server": "@alice:localhost",
        "third_party_signed": {"sender": "@alice:localhost"},
        "foo": "bar",
    }
    joined = call(open_server, "POST", f"/rooms/{room_id}/join", token=bob, body=body)
    assert joined.status == 200, joined.body
    content = member_content(open_server, alice, room_id, "@bob:localhost")
    assert content["membership"] == "join"
    assert content["foo"] == "bar"
    assert "join_authorised_via_users_server" not in content
    assert "third_party_signed" not in content


def test_a_join_reason_must_be_a_string(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    refused = call(open_server, "POST", f"/join/{room_id}", token=bob, body={"reason": 5})
    assert (refused.status, refused.json()["errcode"]) == (400, "M_BAD_JSON")
