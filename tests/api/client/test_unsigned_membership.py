"""``unsigned.membership``: the requesting user's membership at each event, the
event's own change included, ``leave`` before they had any — in /sync, /messages,
/context and /event.

spec: client-server-api/_index.md#room-event-format (v1.11),
data/api/client-server/definitions/client_event_without_room_id.yaml (``membership``)
"""

from __future__ import annotations

from typing import Any

from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_sync import sync
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def _story(server: ServerProcess) -> tuple[str, str, str, dict[str, str]]:
    """Alice's room: m0, Bob invited, m1, Bob joins, m2.  Event IDs by label."""
    alice = register(server, "alice")["access_token"]
    bob = register(server, "bob")["access_token"]
    room_id = create_room(server, alice, preset="private_chat")
    ids = {"m0": send_text(server, alice, room_id, "m0", "m0").json()["event_id"]}
    invite = call(
        server, "POST", f"/rooms/{room_id}/invite", token=alice, body={"user_id": "@bob:localhost"}
    )
    assert invite.status == 200
    ids["m1"] = send_text(server, alice, room_id, "m1", "m1").json()["event_id"]
    assert call(server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    ids["m2"] = send_text(server, alice, room_id, "m2", "m2").json()["event_id"]
    return alice, bob, room_id, ids


def _labelled(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(message body or the target's membership, unsigned.membership) per event."""
    result = []
    for event in events:
        if event["type"] == "m.room.message":
            label = event["content"]["body"]
        elif event.get("state_key") == "@bob:localhost":
            label = "bob " + event["content"]["membership"]
        else:
            continue
        result.append((label, event["unsigned"].get("membership")))
    return result


EXPECTED_FOR_BOB = [
    ("m0", "leave"),
    ("bob invite", "invite"),
    ("m1", "invite"),
    ("bob join", "join"),
    ("m2", "join"),
]


def test_sync_events_carry_the_users_membership_at_each_event(
    open_server: ServerProcess,
) -> None:
    alice, bob, room_id, _ = _story(open_server)
    room = sync(open_server, bob)["rooms"]["join"][room_id]
    assert _labelled(room["timeline"]["events"]) == EXPECTED_FOR_BOB
    creation = [e for e in room["state"]["events"] if e["type"] == "m.room.create"]
    assert [e["unsigned"]["membership"] for e in creation] == ["leave"]
    # Alice was joined for all of it (her own join is in the state section).
    alices = sync(open_server, alice)["rooms"]["join"][room_id]
    assert {m for _, m in _labelled(alices["timeline"]["events"])} == {"join"}


def test_messages_context_and_event_carry_the_users_membership(
    open_server: ServerProcess,
) -> None:
    _alice, bob, room_id, ids = _story(open_server)
    page = call(open_server, "GET", f"/rooms/{room_id}/messages?dir=b&limit=20", token=bob)
    assert page.status == 200, page.body
    assert _labelled(list(reversed(page.json()["chunk"]))) == EXPECTED_FOR_BOB
    context = call(open_server, "GET", f"/rooms/{room_id}/context/{ids['m1']}", token=bob)
    assert context.status == 200, context.body
    assert context.json()["event"]["unsigned"]["membership"] == "invite"
    single = call(open_server, "GET", f"/rooms/{room_id}/event/{ids['m2']}", token=bob)
    assert single.json()["unsigned"]["membership"] == "join"
    first = call(open_server, "GET", f"/rooms/{room_id}/event/{ids['m0']}", token=bob)
    assert first.json()["unsigned"]["membership"] == "leave"


def test_membership_after_leaving_is_leave(open_server: ServerProcess) -> None:
    alice, bob, room_id, ids = _story(open_server)
    since = sync(open_server, bob)["next_batch"]
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=bob, body={}).status == 200
    body = sync(open_server, bob, f"?since={since}")
    [leave] = body["rooms"]["leave"][room_id]["timeline"]["events"]
    assert leave["unsigned"]["membership"] == "leave"
    # Alice's view of Bob's leave: she is still joined.
    alices = call(open_server, "GET", f"/rooms/{room_id}/event/{leave['event_id']}", token=alice)
    assert alices.json()["unsigned"]["membership"] == "join"
