"""Lazy-loaded members in /sync: only timeline senders' memberships, each sent once
per device, and never hidden by a response the client did not receive.

spec: client-server-api/_index.md#lazy-loading-room-members
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_sync import sync
from tests.support.matrix import call, login, register
from tests.support.server_process import ServerProcess

# Where Element and matrix-js-sdk put the flag: on the room state filter.
LAZY = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 3}}}
LAZY_REDUNDANT = {
    "room": {
        "state": {"lazy_load_members": True, "include_redundant_members": True},
        "timeline": {"limit": 3},
    }
}


def lazy_sync(
    server: ServerProcess, token: str, since: str | None = None, definition: Any = None
) -> dict[str, Any]:
    query = "?filter=" + quote(json.dumps(definition or LAZY))
    if since is not None:
        query += f"&since={since}"
    return sync(server, token, query)


def state_members(body: dict[str, Any], room_id: str) -> set[str]:
    room = body["rooms"]["join"][room_id]
    return {e["state_key"] for e in room["state"]["events"] if e["type"] == "m.room.member"}


def _room_of_five(server: ServerProcess) -> tuple[str, dict[str, str]]:
    tokens = {
        name: register(server, name)["access_token"]
        for name in ("alice", "bob", "carol", "dan", "erin")
    }
    room_id = create_room(server, tokens["alice"], preset="public_chat")
    for name in ("bob", "carol", "dan", "erin"):
        assert call(server, "POST", f"/join/{room_id}", token=tokens[name], body={}).status == 200
    for i in range(4):
        send_text(server, tokens["alice"], room_id, f"a{i}", f"a{i}")
    return room_id, tokens


def test_initial_lazy_sync_sends_only_senders_and_self(open_server: ServerProcess) -> None:
    room_id, tokens = _room_of_five(open_server)
    send_text(open_server, tokens["carol"], room_id, "from carol", "c0")
    body = lazy_sync(open_server, tokens["bob"])
    assert state_members(body, room_id) == {
        "@alice:localhost",
        "@bob:localhost",
        "@carol:localhost",
    }
    summary = body["rooms"]["join"][room_id]["summary"]
    assert summary["m.joined_member_count"] == 5


def test_a_new_senders_membership_comes_once_then_only_when_changed(
    open_server: ServerProcess,
) -> None:
    room_id, tokens = _room_of_five(open_server)
    first = lazy_sync(open_server, tokens["bob"])
    assert "@dan:localhost" not in state_members(first, room_id)
    # Dan joined long ago, out of the timeline the client saw; now he talks.
    send_text(open_server, tokens["dan"], room_id, "hello from dan", "d0")
    second = lazy_sync(open_server, tokens["bob"], first["next_batch"])
    assert state_members(second, room_id) == {"@dan:localhost"}
    # The client has Dan (and Alice, and itself) now: nothing is repeated.
    send_text(open_server, tokens["dan"], room_id, "dan again", "d1")
    send_text(open_server, tokens["alice"], room_id, "alice again", "a9")
    third = lazy_sync(open_server, tokens["bob"], second["next_batch"])
    assert state_members(third, room_id) == set()
    # A renamed Dan is a new membership, shown in the timeline itself.
    call(
        open_server,
        "PUT",
        "/profile/@dan:localhost/displayname",
        token=tokens["dan"],
        body={"displayname": "Daniel"},
    )
    send_text(open_server, tokens["dan"], room_id, "as daniel", "d2")
    fourth = lazy_sync(open_server, tokens["bob"], third["next_batch"])
    timeline = fourth["rooms"]["join"][room_id]["timeline"]["events"]
    assert any(
        e["type"] == "m.room.member" and e["content"].get("displayname") == "Daniel"
        for e in timeline
    )
    send_text(open_server, tokens["dan"], room_id, "still daniel", "d3")
    fifth = lazy_sync(open_server, tokens["bob"], fourth["next_batch"])
    assert state_members(fifth, room_id) == set()


def test_redundant_members_are_sent_when_the_filter_asks(open_server: ServerProcess) -> None:
    room_id, tokens = _room_of_five(open_server)
    first = lazy_sync(open_server, tokens["bob"], definition=LAZY_REDUNDANT)
    send_text(open_server, tokens["alice"], room_id, "again", "a8")
    second = lazy_sync(open_server, tokens["bob"], first["next_batch"], LAZY_REDUNDANT)
    assert state_members(second, room_id) == {"@alice:localhost", "@bob:localhost"}


def test_a_lost_response_does_not_hide_a_membership(open_server: ServerProcess) -> None:
    room_id, tokens = _room_of_five(open_server)
    first = lazy_sync(open_server, tokens["bob"])
    send_text(open_server, tokens["erin"], room_id, "from erin", "e0")
    lost = lazy_sync(open_server, tokens["bob"], first["next_batch"])
    assert state_members(lost, room_id) == {"@erin:localhost"}
    # The client never got that answer and syncs again from its old token.
    retried = lazy_sync(open_server, tokens["bob"], first["next_batch"])
    assert state_members(retried, room_id) == {"@erin:localhost"}


def test_each_device_is_sent_members_it_lacks(open_server: ServerProcess) -> None:
    room_id, tokens = _room_of_five(open_server)
    laptop_token = login(open_server, "bob")["access_token"]
    phone_first = lazy_sync(open_server, tokens["bob"])
    laptop_first = lazy_sync(open_server, laptop_token)
    send_text(open_server, tokens["carol"], room_id, "from carol", "c1")
    phone_second = lazy_sync(open_server, tokens["bob"], phone_first["next_batch"])
    assert state_members(phone_second, room_id) == {"@carol:localhost"}
    laptop_second = lazy_sync(open_server, laptop_token, laptop_first["next_batch"])
    assert state_members(laptop_second, room_id) == {"@carol:localhost"}
