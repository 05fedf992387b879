"""/sync state sections around gaps: a ``limited`` (gapped) or filtered timeline must
not lose a state change, a new join gets the whole room, a profile change is one
event, and history visibility never hides the current state.

spec: client-server-api/_index.md#syncing, data/api/client-server/sync.yaml (``state``:
"Updates to the state, between the time indicated by the since parameter, and the
start of the timeline")
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_sync import sync
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def filtered_sync(
    server: ServerProcess, token: str, definition: Any, since: str | None = None
) -> dict[str, Any]:
    """/sync with ``definition`` passed inline as JSON in the ``filter`` parameter."""
    query = "?filter=" + quote(json.dumps(definition))
    if since is not None:
        query += f"&since={since}"
    return sync(server, token, query)


def put_state(
    server: ServerProcess, token: str, room_id: str, event_type: str, content: Any, key: str = ""
) -> str:
    response = call(
        server, "PUT", f"/rooms/{room_id}/state/{event_type}/{key}", token=token, body=content
    )
    assert response.status == 200, response.body
    event_id: str = response.json()["event_id"]
    return event_id


def send_filler(server: ServerProcess, token: str, room_id: str, count: int, tag: str) -> None:
    for i in range(count):
        send_text(server, token, room_id, f"{tag}{i}", f"{tag}-{i}")


def joined(body: dict[str, Any], room_id: str) -> dict[str, Any]:
    room: dict[str, Any] = body["rooms"]["join"][room_id]
    return room


def state_ids(room: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(e["type"], e["state_key"]): e["event_id"] for e in room["state"]["events"]}


def timeline_ids(room: dict[str, Any]) -> list[str]:
    return [e["event_id"] for e in room["timeline"]["events"]]


def test_gapped_sync_includes_every_state_change_of_the_gap(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    definition = {"room": {"timeline": {"limit": 2}}}
    first = filtered_sync(open_server, alice, definition)
    name = put_state(open_server, alice, room_id, "m.room.name", {"name": "Gap"})
    topic = put_state(open_server, alice, room_id, "m.room.topic", {"topic": "in the gap"})
    send_filler(open_server, alice, room_id, 5, "f")
    room = joined(filtered_sync(open_server, alice, definition, first["next_batch"]), room_id)
    assert room["timeline"]["limited"] is True
    assert len(room["timeline"]["events"]) == 2
    state = state_ids(room)
    assert state[("m.room.name", "")] == name
    assert state[("m.room.topic", "")] == topic
    # Only what changed: the creation state the client already has is not resent.
    assert ("m.room.create", "") not in state


def test_gapped_sync_with_a_types_filter_keeps_filtered_out_state(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    definition = {"room": {"timeline": {"types": ["m.room.message"], "limit": 3}}}
    first = filtered_sync(open_server, alice, definition)
    name = put_state(open_server, alice, room_id, "m.room.name", {"name": "Before"})
    send_filler(open_server, alice, room_id, 5, "g")
    # Inside the timeline's span, but left out of it by the filter.
    topic = put_state(open_server, alice, room_id, "m.room.topic", {"topic": "inside"})
    send_text(open_server, alice, room_id, "last", "last")
    room = joined(filtered_sync(open_server, alice, definition, first["next_batch"]), room_id)
    assert room["timeline"]["limited"] is True
    assert [e["content"]["body"] for e in room["timeline"]["events"]] == ["g3", "g4", "last"]
    state = state_ids(room)
    assert state[("m.room.name", "")] == name
    assert state[("m.room.topic", "")] == topic


def test_unlimited_sync_with_not_types_filter_keeps_filtered_out_state(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    definition = {"room": {"timeline": {"not_types": ["m.room.topic"], "limit": 10}}}
    first = filtered_sync(open_server, alice, definition)
    send_text(open_server, alice, room_id, "one", "one")
    topic = put_state(open_server, alice, room_id, "m.room.topic", {"topic": "hidden"})
    send_text(open_server, alice, room_id, "two", "two")
    room = joined(filtered_sync(open_server, alice, definition, first["next_batch"]), room_id)
    assert room["timeline"]["limited"] is False
    assert topic not in timeline_ids(room)
    assert state_ids(room) == {("m.room.topic", ""): topic}


def test_a_newly_joined_room_comes_with_full_state(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat", name="Hall", topic="t")
    send_filler(open_server, alice, room_id, 12, "h")
    before = sync(open_server, bob)
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    room = joined(sync(open_server, bob, f"?since={before['next_batch']}"), room_id)
    current = call(open_server, "GET", f"/rooms/{room_id}/state", token=bob).json()
    seen = state_ids(room)
    for event in room["timeline"]["events"]:
        if "state_key" in event:
            seen[(event["type"], event["state_key"])] = event["event_id"]
    assert seen == {(e["type"], e["state_key"]): e["event_id"] for e in current}
    # The state section is the state at the start of the timeline: create and name
    # are there, bob's join (in the timeline) is not.
    assert ("m.room.create", "") in state_ids(room)
    assert ("m.room.name", "") in state_ids(room)
    assert timeline_ids(room)[-1] == seen[("m.room.member", "@bob:localhost")]


def test_a_display_name_change_is_one_state_event_not_a_full_state_sync(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat", name="Hall")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    first = sync(open_server, bob)
    response = call(
        open_server,
        "PUT",
        "/profile/@bob:localhost/displayname",
        token=bob,
        body={"displayname": "Robert"},
    )
    assert response.status == 200
    room = joined(sync(open_server, bob, f"?since={first['next_batch']}"), room_id)
    assert room["state"]["events"] == []
    assert room["timeline"]["limited"] is False
    [member] = room["timeline"]["events"]
    assert member["type"] == "m.room.member"
    assert member["content"]["displayname"] == "Robert"


def _restricted_room(server: ServerProcess, alice: str, visibility: str) -> str:
    room_id = create_room(
        server,
        alice,
        preset="public_chat",
        initial_state=[
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": visibility},
            }
        ],
    )
    put_state(server, alice, room_id, "m.room.name", {"name": "Secret"})
    put_state(server, alice, room_id, "m.room.topic", {"topic": "not for latecomers"})
    send_filler(server, alice, room_id, 3, "s")
    return room_id


def _assert_current_state_reached(
    server: ServerProcess, token: str, room: dict[str, Any], room_id: str
) -> None:
    seen = state_ids(room)
    for event in room["timeline"]["events"]:
        if "state_key" in event:
            seen[(event["type"], event["state_key"])] = event["event_id"]
    current = call(server, "GET", f"/rooms/{room_id}/state", token=token).json()
    assert seen == {(e["type"], e["state_key"]): e["event_id"] for e in current}
    # Nothing from before the user could see it is in the timeline.
    assert not any(e["type"] == "m.room.message" for e in room["timeline"]["events"])


def test_joined_history_visibility_still_delivers_the_current_state(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = _restricted_room(open_server, alice, "joined")
    before = sync(open_server, bob)
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    incremental = joined(sync(open_server, bob, f"?since={before['next_batch']}"), room_id)
    _assert_current_state_reached(open_server, bob, incremental, room_id)
    # Events from before the history_visibility event was set were "shared" and may
    # show; the name, topic and messages (sent under "joined") may not.
    own_join = incremental["timeline"]["events"][-1]
    assert own_join["state_key"] == "@bob:localhost"
    hidden = {("m.room.name", ""), ("m.room.topic", "")}
    assert not any(
        (e["type"], e.get("state_key")) in hidden for e in incremental["timeline"]["events"]
    )
    initial = joined(sync(open_server, bob), room_id)
    _assert_current_state_reached(open_server, bob, initial, room_id)


def test_invited_history_visibility_still_delivers_the_current_state(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = _restricted_room(open_server, alice, "invited")
    response = call(
        open_server,
        "POST",
        f"/rooms/{room_id}/invite",
        token=alice,
        body={"user_id": "@bob:localhost"},
    )
    assert response.status == 200
    invited = sync(open_server, bob)
    assert room_id in invited["rooms"]["invite"]
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    incremental = joined(sync(open_server, bob, f"?since={invited['next_batch']}"), room_id)
    _assert_current_state_reached(open_server, bob, incremental, room_id)
    memberships = [
        e["content"]["membership"]
        for e in incremental["timeline"]["events"]
        if e.get("state_key") == "@bob:localhost"
    ]
    assert memberships == ["invite", "join"]
