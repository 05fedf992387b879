"""Reading rooms over HTTP: /messages, /context, redactions, edits, visibility."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.api.client.test_rooms import create_public_room_with_history, create_room, send_text
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def texts(chunk: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in chunk if e["type"] == "m.room.message"]


def test_messages_paginate_backwards_and_forwards(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    for i in range(25):
        send_text(open_server, alice, room_id, f"m{i}", f"t{i}")
    seen: list[str] = []
    token = None
    while True:
        path = f"/rooms/{room_id}/messages?dir=b&limit=7"
        if token is not None:
            path += f"&from={token}"
        page = call(open_server, "GET", path, token=alice).json()
        seen.extend(texts(page["chunk"]))
        if "end" not in page:
            break
        token = page["end"]
    assert seen == [f"m{i}" for i in reversed(range(25))]
    forward = call(
        open_server, "GET", f"/rooms/{room_id}/messages?dir=f&limit=1000", token=alice
    ).json()
    assert texts(forward["chunk"]) == [f"m{i}" for i in range(25)]
    assert forward["chunk"][0]["type"] == "m.room.create"


def test_messages_filter_by_type_and_sender(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    send_text(open_server, alice, room_id, "hello", "t1")
    only_messages = quote(json.dumps({"types": ["m.room.message"]}))
    page = call(
        open_server, "GET", f"/rooms/{room_id}/messages?filter={only_messages}", token=alice
    ).json()
    assert [e["type"] for e in page["chunk"]] == ["m.room.message"]
    bad = call(open_server, "GET", f"/rooms/{room_id}/messages?filter=%7Bnope", token=alice)
    assert bad.status == 400
    bad_type = quote(json.dumps({"limit": "ten"}))
    bad = call(open_server, "GET", f"/rooms/{room_id}/messages?filter={bad_type}", token=alice)
    assert (bad.status, bad.json()["errcode"]) == (400, "M_BAD_JSON")
    bad_token = call(open_server, "GET", f"/rooms/{room_id}/messages?from=zzz", token=alice)
    assert (bad_token.status, bad_token.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_context_around_an_event(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, name="Ctx")
    ids = [
        send_text(open_server, alice, room_id, f"m{i}", f"t{i}").json()["event_id"]
        for i in range(9)
    ]
    context = call(
        open_server, "GET", f"/rooms/{room_id}/context/{ids[4]}?limit=4", token=alice
    ).json()
    assert context["event"]["event_id"] == ids[4]
    assert texts(context["events_before"]) == ["m3", "m2"]
    assert texts(context["events_after"]) == ["m5", "m6"]
    assert any(e["type"] == "m.room.name" for e in context["state"])
    missing = call(open_server, "GET", f"/rooms/{room_id}/context/$nope", token=alice)
    assert missing.status == 404


def test_non_members_cannot_read_a_private_room(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    eve = register(open_server, "eve")["access_token"]
    room_id = create_room(open_server, alice)
    event_id = send_text(open_server, alice, room_id, "secret", "t1").json()["event_id"]
    for path in (
        f"/rooms/{room_id}/messages",
        f"/rooms/{room_id}/state",
        f"/rooms/{room_id}/members",
        f"/rooms/{room_id}/joined_members",
        f"/rooms/{room_id}/context/{event_id}",
    ):
        response = call(open_server, "GET", path, token=eve)
        assert (response.status, response.json()["errcode"]) == (403, "M_FORBIDDEN"), path
    hidden = call(open_server, "GET", f"/rooms/{room_id}/event/{event_id}", token=eve)
    assert hidden.status == 404


def test_world_readable_rooms_can_be_read_by_anyone(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    eve = register(open_server, "eve")["access_token"]
    room_id = create_room(
        open_server,
        alice,
        initial_state=[
            {
                "type": "m.room.history_visibility",
                "content": {"history_visibility": "world_readable"},
            }
        ],
    )
    send_text(open_server, alice, room_id, "public news", "t1")
    page = call(open_server, "GET", f"/rooms/{room_id}/messages", token=eve).json()
    assert texts(page["chunk"]) == ["public news"]


def test_joined_history_visibility_hides_what_came_before_joining(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_public_room_with_history(open_server, alice, "joined")
    send_text(open_server, alice, room_id, "before bob", "t1")
    call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    send_text(open_server, alice, room_id, "after bob", "t2")
    page = call(open_server, "GET", f"/rooms/{room_id}/messages?limit=50", token=bob).json()
    assert texts(page["chunk"]) == ["after bob"]
    # With "shared" (the default) a new member sees earlier history.
    shared_room = create_room(open_server, alice, preset="public_chat")
    send_text(open_server, alice, shared_room, "old news", "t3")
    call(open_server, "POST", f"/join/{shared_room}", token=bob, body={})
    page = call(open_server, "GET", f"/rooms/{shared_room}/messages?limit=50", token=bob).json()
    assert texts(page["chunk"]) == ["old news"]


def test_left_members_see_history_up_to_their_leave(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    send_text(open_server, alice, room_id, "while bob was here", "t1")
    call(open_server, "POST", f"/rooms/{room_id}/leave", token=bob, body={})
    send_text(open_server, alice, room_id, "after bob left", "t2")
    page = call(open_server, "GET", f"/rooms/{room_id}/messages?limit=50", token=bob).json()
    assert texts(page["chunk"]) == ["while bob was here"]


def test_redaction_is_seen_by_other_members(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    event_id = send_text(open_server, bob, room_id, "oops", "t1").json()["event_id"]
    redact = call(
        open_server,
        "PUT",
        f"/rooms/{room_id}/redact/{event_id}/r1",
        token=bob,
        body={"reason": "typo"},
    )
    assert redact.status == 200, redact.body
    seen = call(open_server, "GET", f"/rooms/{room_id}/event/{event_id}", token=alice).json()
    assert seen["content"] == {}
    assert seen["unsigned"]["redacted_because"]["content"]["reason"] == "typo"
    # Bob cannot redact Alice's message: he lacks the redact level.
    alices = send_text(open_server, alice, room_id, "mine", "t2").json()["event_id"]
    refused = call(open_server, "PUT", f"/rooms/{room_id}/redact/{alices}/r2", token=bob, body={})
    assert refused.status == 403
    # ...but Alice, the room admin, can redact Bob's.
    bobs = send_text(open_server, bob, room_id, "rude", "t3").json()["event_id"]
    allowed = call(open_server, "PUT", f"/rooms/{room_id}/redact/{bobs}/r3", token=alice, body={})
    assert allowed.status == 200


def test_latest_edit_is_bundled_with_the_original(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    original = send_text(open_server, alice, room_id, "helo", "t1").json()["event_id"]
    for n, text in enumerate(["hello", "hello!"]):
        call(
            open_server,
            "PUT",
            f"/rooms/{room_id}/send/m.room.message/e{n}",
            token=alice,
            body={
                "msgtype": "m.text",
                "body": f"* {text}",
                "m.new_content": {"msgtype": "m.text", "body": text},
                "m.relates_to": {"rel_type": "m.replace", "event_id": original},
            },
        )
    event = call(open_server, "GET", f"/rooms/{room_id}/event/{original}", token=alice).json()
    assert event["content"]["body"] == "helo"  # the original content is left intact
    latest = event["unsigned"]["m.relations"]["m.replace"]
    assert latest["content"]["m.new_content"]["body"] == "hello!"


def test_state_endpoints_and_bad_input(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, topic="t")
    topic = call(open_server, "GET", f"/rooms/{room_id}/state/m.room.topic/", token=alice)
    assert topic.json()["topic"] == "t"
    as_event = call(
        open_server, "GET", f"/rooms/{room_id}/state/m.room.topic?format=event", token=alice
    ).json()
    assert as_event["type"] == "m.room.topic"
    put = call(
        open_server, "PUT", f"/rooms/{room_id}/state/m.room.topic", token=alice, body={"topic": "u"}
    )
    same = call(
        open_server, "PUT", f"/rooms/{room_id}/state/m.room.topic", token=alice, body={"topic": "u"}
    )
    assert put.json() == same.json()  # unchanged state is not sent twice
    state = call(open_server, "GET", f"/rooms/{room_id}/state", token=alice).json()
    changed = [e for e in state if e["type"] == "m.room.topic"][0]
    assert changed["unsigned"]["prev_content"]["topic"] == "t"
    not_json = call(
        open_server,
        "PUT",
        f"/rooms/{room_id}/send/m.room.message/x",
        token=alice,
        body=[1, 2],
    )
    assert (not_json.status, not_json.json()["errcode"]) == (400, "M_BAD_JSON")
    huge = call(
        open_server,
        "PUT",
        f"/rooms/{room_id}/send/m.room.message/big",
        token=alice,
        body={"body": "x" * 60_000, "more": "y" * 5_000},
    )
    assert huge.status == 413
    assert (
        call(open_server, "GET", f"/rooms/{room_id}/state/m.room.nope", token=alice).status == 404
    )


def test_timestamp_to_event_finds_the_nearest_visible_event(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    ids = [
        send_text(open_server, alice, room_id, f"m{i}", f"t{i}").json()["event_id"]
        for i in range(3)
    ]
    last = call(open_server, "GET", f"/rooms/{room_id}/event/{ids[-1]}", token=alice).json()
    path = f"/rooms/{room_id}/timestamp_to_event"
    base = "/_matrix/client/v1"
    headers = {"Authorization": f"Bearer {alice}"}
    backwards = open_server.request(
        "GET", f"{base}{path}?ts={last['origin_server_ts'] + 60_000}&dir=b", headers=headers
    ).json()
    assert backwards["event_id"] == ids[-1]
    forwards = open_server.request("GET", f"{base}{path}?ts=0&dir=f", headers=headers).json()
    assert forwards["event_id"].startswith("$")  # the room's create event
    nothing = open_server.request(
        "GET", f"{base}{path}?ts={last['origin_server_ts'] + 60_000}&dir=f", headers=headers
    )
    assert nothing.status == 404
    missing = open_server.request("GET", f"{base}{path}?dir=f", headers=headers)
    assert (missing.status, missing.json()["errcode"]) == (400, "M_MISSING_PARAM")
