"""Timeline filters in /sync: ``limit`` counts matching events, ``limit: 0``,
``event_format: federation``, and filters passed as JSON in the query string.

spec: client-server-api/_index.md#filtering, data/api/client-server/definitions/
sync_filter.yaml, room_event_filter.yaml
"""

from __future__ import annotations

import json
from urllib.parse import quote

from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_sync import sync
from tests.api.client.test_sync_gaps import filtered_sync, joined, send_filler
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def _send_custom(server: ServerProcess, token: str, room_id: str, txn: str) -> None:
    response = call(
        server, "PUT", f"/rooms/{room_id}/send/x.other/{txn}", token=token, body={"n": txn}
    )
    assert response.status == 200, response.body


def _interleaved_room(server: ServerProcess, alice: str, count: int, tag: str) -> str:
    room_id = create_room(server, alice)
    for i in range(count):
        send_text(server, alice, room_id, f"{tag}{i}", f"{tag}-{i}")
        for j in range(3):
            _send_custom(server, alice, room_id, f"{tag}-x{i}-{j}")
    return room_id


def test_filtered_timeline_limit_returns_exactly_limit_matching_events(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = _interleaved_room(open_server, alice, 8, "m")
    definition = {"room": {"timeline": {"types": ["m.room.message"], "limit": 5}}}
    room = joined(filtered_sync(open_server, alice, definition), room_id)
    assert [e["content"]["body"] for e in room["timeline"]["events"]] == [
        f"m{i}" for i in range(3, 8)
    ]
    assert room["timeline"]["limited"] is True
    # The same in an incremental sync with a gap.
    since = filtered_sync(open_server, alice, definition)["next_batch"]
    for i in range(8, 16):
        send_text(open_server, alice, room_id, f"m{i}", f"m-{i}")
        for j in range(3):
            _send_custom(open_server, alice, room_id, f"m-x{i}-{j}")
    room = joined(filtered_sync(open_server, alice, definition, since), room_id)
    assert [e["content"]["body"] for e in room["timeline"]["events"]] == [
        f"m{i}" for i in range(11, 16)
    ]
    assert room["timeline"]["limited"] is True
    # prev_batch leads to the matching events just before the first one returned.
    earlier = call(
        open_server,
        "GET",
        f"/rooms/{room_id}/messages?from={room['timeline']['prev_batch']}&limit=1&dir=b"
        "&filter=" + quote(json.dumps({"types": ["m.room.message"]})),
        token=alice,
    ).json()
    assert [e["content"]["body"] for e in earlier["chunk"]] == ["m10"]


def test_a_filtered_timeline_with_fewer_matches_is_not_limited(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = _interleaved_room(open_server, alice, 2, "q")
    first = filtered_sync(open_server, alice, {"room": {"timeline": {"limit": 3}}})
    for i in range(3):
        _send_custom(open_server, alice, room_id, f"late-{i}")
    send_text(open_server, alice, room_id, "late", "late")
    definition = {"room": {"timeline": {"types": ["m.room.message"], "limit": 3}}}
    room = joined(filtered_sync(open_server, alice, definition, first["next_batch"]), room_id)
    assert [e["content"]["body"] for e in room["timeline"]["events"]] == ["late"]
    assert room["timeline"]["limited"] is False


def test_timeline_limit_zero_is_accepted_and_returns_no_events(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, name="Zero")
    definition = {"room": {"timeline": {"limit": 0}}}
    stored = call(
        open_server, "POST", "/user/@alice:localhost/filter", token=alice, body=definition
    )
    assert stored.status == 200, stored.body
    room = joined(filtered_sync(open_server, alice, definition), room_id)
    assert room["timeline"]["events"] == []
    assert room["timeline"]["limited"] is True
    # The room's state still comes, whole: it is all before the (empty) timeline.
    assert {"m.room.create", "m.room.name"} <= {e["type"] for e in room["state"]["events"]}
    since = sync(open_server, alice, f"?filter={stored.json()['filter_id']}")["next_batch"]
    send_filler(open_server, alice, room_id, 2, "z")
    later = sync(open_server, alice, f"?filter={stored.json()['filter_id']}&since={since}")
    room = joined(later, room_id)
    assert room["timeline"]["events"] == []
    assert room["timeline"]["limited"] is True


def test_event_format_federation_returns_events_as_stored(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    event_id = send_text(open_server, alice, room_id, "raw", "raw").json()["event_id"]
    definition = {"event_format": "federation", "room": {"timeline": {"limit": 3}}}
    room = joined(filtered_sync(open_server, alice, definition), room_id)
    message = room["timeline"]["events"][-1]
    assert message["event_id"] == event_id
    # PDU fields that the client format leaves out.
    for key in ("auth_events", "prev_events", "depth", "hashes", "signatures", "room_id"):
        assert key in message, key
    assert message["content"]["body"] == "raw"
    assert message["room_id"] == room_id
    assert "age" in message["unsigned"]
    client = joined(
        filtered_sync(open_server, alice, {"room": {"timeline": {"limit": 3}}}), room_id
    )
    assert "auth_events" not in client["timeline"]["events"][-1]
    assert "room_id" not in client["timeline"]["events"][-1]


def test_a_filter_passed_as_json_in_the_query_string_is_applied(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = _interleaved_room(open_server, alice, 3, "j")
    definition = {
        "room": {"timeline": {"types": ["x.other"], "limit": 2}, "state": {"types": []}},
        "event_fields": ["type", "content.n"],
    }
    room = joined(filtered_sync(open_server, alice, definition), room_id)
    assert room["timeline"]["events"] == [
        {"type": "x.other", "content": {"n": "j-x2-1"}},
        {"type": "x.other", "content": {"n": "j-x2-2"}},
    ]
    assert room["state"]["events"] == []
