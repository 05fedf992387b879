"""History visibility changes apply exactly from the event after the change.

spec: client-server-api/modules/history_visibility.md ("Server behaviour": the state
at each event decides; an ``m.room.history_visibility`` event is visible if the rule
before *or* after it allows)
"""

from __future__ import annotations

from typing import Any

from tests.api.client.test_rooms import create_public_room_with_history, create_room, send_text
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def set_visibility(server: ServerProcess, token: str, room_id: str, value: str) -> str:
    response = call(
        server,
        "PUT",
        f"/rooms/{room_id}/state/m.room.history_visibility",
        token=token,
        body={"history_visibility": value},
    )
    assert response.status == 200, response.body
    event_id: str = response.json()["event_id"]
    return event_id


def seen(chunk: list[dict[str, Any]]) -> list[str]:
    """Messages by body and visibility changes as ``hv:<value>``, oldest first."""
    found = []
    for event in reversed(chunk):
        if event["type"] == "m.room.message":
            found.append(event["content"]["body"])
        elif event["type"] == "m.room.history_visibility":
            found.append("hv:" + event["content"]["history_visibility"])
    return found


def test_visibility_changes_take_effect_on_their_boundaries(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    send_text(open_server, alice, room_id, "shared 1", "t1")
    set_visibility(open_server, alice, room_id, "joined")
    send_text(open_server, alice, room_id, "joined 1", "t2")
    set_visibility(open_server, alice, room_id, "shared")
    send_text(open_server, alice, room_id, "shared 2", "t3")
    set_visibility(open_server, alice, room_id, "joined")
    send_text(open_server, alice, room_id, "joined 2", "t4")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    send_text(open_server, alice, room_id, "after bob joined", "t5")
    page = call(open_server, "GET", f"/rooms/{room_id}/messages?dir=b&limit=100", token=bob)
    assert page.status == 200, page.body
    # Each message follows the rule in force when it was sent; each change is seen
    # because the rule on one side of it lets bob (who joined later) see it.
    assert seen(page.json()["chunk"]) == [
        "hv:shared",  # the public_chat preset's
        "shared 1",
        "hv:joined",
        "hv:shared",
        "shared 2",
        "hv:joined",
        "after bob joined",
    ]


def test_a_change_between_two_restrictive_rules_stays_hidden(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_public_room_with_history(open_server, alice, "joined")
    send_text(open_server, alice, room_id, "joined 1", "t1")
    hidden = set_visibility(open_server, alice, room_id, "invited")
    send_text(open_server, alice, room_id, "invited 1", "t2")
    world = set_visibility(open_server, alice, room_id, "world_readable")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    page = call(open_server, "GET", f"/rooms/{room_id}/messages?dir=b&limit=100", token=bob)
    # joined -> invited: neither side lets bob (not invited then) see it; invited ->
    # world_readable: the new rule does.
    assert seen(page.json()["chunk"]) == ["hv:joined", "hv:world_readable"]
    ids = {event["event_id"] for event in page.json()["chunk"]}
    assert world in ids and hidden not in ids
    single = call(open_server, "GET", f"/rooms/{room_id}/event/{hidden}", token=bob)
    assert (single.status, single.json()["errcode"]) == (404, "M_NOT_FOUND")
    assert call(open_server, "GET", f"/rooms/{room_id}/event/{world}", token=bob).status == 200


def test_departed_member_keeps_shared_history_before_their_join(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    send_text(open_server, alice, room_id, "before bob", "t1")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    send_text(open_server, alice, room_id, "with bob", "t2")
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=bob, body={}).status == 200
    send_text(open_server, alice, room_id, "after bob", "t3")
    page = call(open_server, "GET", f"/rooms/{room_id}/messages?dir=b&limit=100", token=bob)
    assert page.status == 200, page.body
    # shared: bob joined after "before bob", so he may see it, even having left.
    assert seen(page.json()["chunk"]) == ["hv:shared", "before bob", "with bob"]
