"""Lazy-loaded members across gaps: a gapped incremental sync carries the timeline
senders the device lacks *and* every membership change of the gap (joins, leaves);
a non-gapped one shows leaves in its timeline.

spec: client-server-api/_index.md#lazy-loading-room-members; these are sytest's
"Members from the gap are included in gappy incr LL sync", "Old leaves are present in
gapped incremental syncs", "Leaves are present in non-gapped incremental syncs" and
"The only membership state included in a gapped incremental sync is for senders in
the timeline".
"""

from __future__ import annotations

from tests.api.client.test_rooms import create_room
from tests.api.client.test_sync_gaps import send_filler
from tests.api.client.test_sync_lazy_members import lazy_sync, state_members
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess

LAZY_10 = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 10}}}


def _join(server: ServerProcess, token: str, room_id: str) -> None:
    assert call(server, "POST", f"/join/{room_id}", token=token, body={}).status == 200


def test_members_from_the_gap_are_included_in_gappy_lazy_sync(
    open_server: ServerProcess,
) -> None:
    tokens = {n: register(open_server, n)["access_token"] for n in ("alice", "bob", "cat", "dan")}
    room_id = create_room(open_server, tokens["alice"], preset="public_chat")
    _join(open_server, tokens["bob"], room_id)
    _join(open_server, tokens["cat"], room_id)
    send_filler(open_server, tokens["bob"], room_id, 10, "b")
    first = lazy_sync(open_server, tokens["alice"], definition=LAZY_10)
    assert state_members(first, room_id) == {"@alice:localhost", "@bob:localhost"}
    _join(open_server, tokens["dan"], room_id)  # in the gap, never speaks
    send_filler(open_server, tokens["cat"], room_id, 10, "c")
    second = lazy_sync(open_server, tokens["alice"], first["next_batch"], LAZY_10)
    room = second["rooms"]["join"][room_id]
    assert room["timeline"]["limited"] is True
    assert state_members(second, room_id) == {"@cat:localhost", "@dan:localhost"}


def test_old_leaves_are_present_in_gapped_lazy_sync(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    _join(open_server, bob, room_id)
    send_filler(open_server, bob, room_id, 2, "b")
    first = lazy_sync(open_server, alice, definition=LAZY_10)
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=bob, body={}).status == 200
    send_filler(open_server, alice, room_id, 12, "a")
    second = lazy_sync(open_server, alice, first["next_batch"], LAZY_10)
    room = second["rooms"]["join"][room_id]
    assert room["timeline"]["limited"] is True
    leaves = [
        e
        for e in room["state"]["events"]
        if e["type"] == "m.room.member" and e["state_key"] == "@bob:localhost"
    ]
    assert [e["content"]["membership"] for e in leaves] == ["leave"]


def test_leaves_are_present_in_non_gapped_lazy_sync(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    _join(open_server, bob, room_id)
    first = lazy_sync(open_server, alice, definition=LAZY_10)
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=bob, body={}).status == 200
    second = lazy_sync(open_server, alice, first["next_batch"], LAZY_10)
    room = second["rooms"]["join"][room_id]
    assert room["timeline"]["limited"] is False
    assert [(e["state_key"], e["content"]["membership"]) for e in room["timeline"]["events"]] == [
        ("@bob:localhost", "leave")
    ]


def test_only_timeline_senders_in_gapped_lazy_sync(open_server: ServerProcess) -> None:
    tokens = {n: register(open_server, n)["access_token"] for n in ("alice", "bob", "cat", "dan")}
    room_id = create_room(open_server, tokens["alice"], preset="public_chat")
    for name in ("bob", "cat", "dan"):
        _join(open_server, tokens[name], room_id)
    send_filler(open_server, tokens["bob"], room_id, 20, "b")
    first = lazy_sync(open_server, tokens["alice"], definition=LAZY_10)
    assert state_members(first, room_id) == {"@alice:localhost", "@bob:localhost"}
    send_filler(open_server, tokens["cat"], room_id, 20, "c")
    second = lazy_sync(open_server, tokens["alice"], first["next_batch"], LAZY_10)
    assert second["rooms"]["join"][room_id]["timeline"]["limited"] is True
    # Dan joined before the first sync: not a change of the gap, and silent.
    assert state_members(second, room_id) == {"@cat:localhost"}


def test_redundant_members_come_in_a_gapped_sync_when_asked(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    _join(open_server, bob, room_id)
    redundant = {
        "room": {
            "state": {"lazy_load_members": True, "include_redundant_members": True},
            "timeline": {"limit": 3},
        }
    }
    send_filler(open_server, bob, room_id, 3, "b")
    first = lazy_sync(open_server, alice, definition=redundant)
    assert state_members(first, room_id) == {"@alice:localhost", "@bob:localhost"}
    send_filler(open_server, bob, room_id, 6, "c")
    again = lazy_sync(open_server, alice, first["next_batch"], redundant)
    assert state_members(again, room_id) == {"@alice:localhost", "@bob:localhost"}
    plain = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 3}}}
    send_filler(open_server, bob, room_id, 6, "d")
    held = lazy_sync(open_server, alice, again["next_batch"], plain)
    assert state_members(held, room_id) == set()
