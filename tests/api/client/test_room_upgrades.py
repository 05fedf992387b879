"""Room upgrades (``POST /rooms/{roomId}/upgrade``) over HTTP against the real server.

spec: client-server-api/modules/room_upgrades.md
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.api.client.test_rooms import create_room, send_text
from tests.support.http import Response
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess

ALICE = "@alice:localhost"
BOB = "@bob:localhost"


def upgrade(
    server: ServerProcess, token: str, room_id: str, version: str, **extra: Any
) -> Response:
    body = {"new_version": version, **extra}
    return call(server, "POST", f"/rooms/{quote(room_id)}/upgrade", token=token, body=body)


def upgraded(server: ServerProcess, token: str, room_id: str, version: str, **extra: Any) -> str:
    response = upgrade(server, token, room_id, version, **extra)
    assert response.status == 200, response.body
    replacement: str = response.json()["replacement_room"]
    return replacement


def state(server: ServerProcess, token: str, room_id: str, event_type: str, key: str = "") -> Any:
    """The content of a state event, or None if the room has none."""
    response = call(
        server, "GET", f"/rooms/{quote(room_id)}/state/{event_type}/{quote(key)}", token=token
    )
    if response.status == 404:
        return None
    assert response.status == 200, response.body
    return response.json()


def state_event(server: ServerProcess, token: str, room_id: str, event_type: str) -> Any:
    response = call(server, "GET", f"/rooms/{quote(room_id)}/state", token=token)
    assert response.status == 200, response.body
    [event] = [e for e in response.json() if e["type"] == event_type and e["state_key"] == ""]
    return event


def put_state(
    server: ServerProcess, token: str, room_id: str, event_type: str, content: Any, key: str = ""
) -> None:
    response = call(
        server,
        "PUT",
        f"/rooms/{quote(room_id)}/state/{event_type}/{quote(key)}",
        token=token,
        body=content,
    )
    assert response.status == 200, response.body


def join(server: ServerProcess, token: str, room_id: str) -> Response:
    return call(server, "POST", f"/join/{quote(room_id)}", token=token, body={})


def public_room_ids(server: ServerProcess, token: str) -> list[str]:
    response = call(server, "GET", "/publicRooms", token=token)
    assert response.status == 200, response.body
    return [room["room_id"] for room in response.json()["chunk"]]


def test_upgrade_creates_a_successor_with_the_transferable_state(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(
        open_server,
        alice,
        room_version="10",
        preset="public_chat",
        name="Lounge",
        topic="Chat",
        creation_content={"type": "m.space"},
        power_level_content_override={"users": {ALICE: 100, BOB: 50}, "events_default": 5},
    )
    transferable = {
        "m.room.avatar": {"url": "mxc://localhost/abc"},
        "m.room.encryption": {"algorithm": "m.megolm.v1.aes-sha2"},
        "m.room.server_acl": {"allow": ["*"], "deny": ["evil.example"], "allow_ip_literals": False},
        "m.room.history_visibility": {"history_visibility": "world_readable"},
        "m.room.guest_access": {"guest_access": "can_join"},
    }
    for event_type, content in transferable.items():
        put_state(open_server, alice, room_id, event_type, content)
    put_state(
        open_server, alice, room_id, "m.space.child", {"via": ["localhost"]}, "!child:localhost"
    )
    put_state(open_server, alice, room_id, "m.space.child", {}, "!gone:localhost")
    put_state(open_server, alice, room_id, "org.example.custom", {"kept": False})
    assert join(open_server, bob, room_id).status == 200
    old_levels = state(open_server, alice, room_id, "m.room.power_levels")

    new_room = upgraded(open_server, alice, room_id, "11")

    assert new_room != room_id
    create = state(open_server, alice, new_room, "m.room.create")
    assert create["room_version"] == "11"
    assert create["type"] == "m.space"
    assert create["predecessor"]["room_id"] == room_id
    assert create["predecessor"]["event_id"].startswith("$")
    for event_type, content in transferable.items():
        assert state(open_server, alice, new_room, event_type) == content, event_type
    assert state(open_server, alice, new_room, "m.room.name") == {"name": "Lounge"}
    assert state(open_server, alice, new_room, "m.room.topic")["topic"] == "Chat"
    assert state(open_server, alice, new_room, "m.room.join_rules") == {"join_rule": "public"}
    assert state(open_server, alice, new_room, "m.room.power_levels") == old_levels
    assert state(open_server, alice, new_room, "m.space.child", "!child:localhost") == {
        "via": ["localhost"]
    }
    assert state(open_server, alice, new_room, "m.space.child", "!gone:localhost") is None
    # Other state is the sender's business, and members join themselves.
    assert state(open_server, alice, new_room, "org.example.custom") is None
    assert state(open_server, alice, new_room, "m.room.member", BOB) is None
    assert state(open_server, alice, new_room, "m.room.member", ALICE)["membership"] == "join"


def test_old_room_gets_a_tombstone_and_ordinary_members_are_muted(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, room_version="10", preset="public_chat")
    assert join(open_server, bob, room_id).status == 200
    assert send_text(open_server, bob, room_id, "before", "t1").status == 200

    new_room = upgraded(open_server, alice, room_id, "11")

    tombstone = state(open_server, bob, room_id, "m.room.tombstone")
    assert tombstone["replacement_room"] == new_room
    assert isinstance(tombstone["body"], str) and tombstone["body"]
    levels = state(open_server, bob, room_id, "m.room.power_levels")
    assert (levels["events_default"], levels["invite"]) == (50, 50)
    muted = send_text(open_server, bob, room_id, "after", "t2")
    assert (muted.status, muted.json()["errcode"]) == (403, "M_FORBIDDEN")
    # The new room is where the conversation goes on.
    assert join(open_server, bob, new_room).status == 200
    assert send_text(open_server, bob, new_room, "hello again", "t3").status == 200


def test_aliases_and_canonical_alias_move_to_the_new_room(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, room_version="10", room_alias_name="lounge")
    other = call(
        open_server,
        "PUT",
        "/directory/room/" + quote("#lounge-old:localhost", safe=""),
        token=alice,
        body={"room_id": room_id},
    )
    assert other.status == 200, other.body
    put_state(
        open_server,
        alice,
        room_id,
        "m.room.canonical_alias",
        {"alias": "#lounge:localhost", "alt_aliases": ["#lounge-old:localhost"]},
    )

    new_room = upgraded(open_server, alice, room_id, "11")

    for alias in ("#lounge:localhost", "#lounge-old:localhost"):
        resolved = call(open_server, "GET", "/directory/room/" + quote(alias, safe=""))
        assert resolved.json()["room_id"] == new_room, alias
    assert state(open_server, alice, new_room, "m.room.canonical_alias") == {
        "alias": "#lounge:localhost",
        "alt_aliases": ["#lounge-old:localhost"],
    }
    assert state(open_server, alice, room_id, "m.room.canonical_alias") == {}
    aliases = call(open_server, "GET", f"/rooms/{quote(new_room)}/aliases", token=alice)
    assert sorted(aliases.json()["aliases"]) == ["#lounge-old:localhost", "#lounge:localhost"]
    old_aliases = call(open_server, "GET", f"/rooms/{quote(room_id)}/aliases", token=alice)
    assert old_aliases.json()["aliases"] == []


def test_published_room_is_replaced_in_the_directory(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, room_version="10", visibility="public", name="Town")
    assert room_id in public_room_ids(open_server, alice)

    new_room = upgraded(open_server, alice, room_id, "11")

    listed = public_room_ids(open_server, alice)
    assert new_room in listed
    assert room_id not in listed
    [entry] = [
        room
        for room in call(open_server, "GET", "/publicRooms").json()["chunk"]
        if room["room_id"] == new_room
    ]
    assert entry["name"] == "Town"
    for room, visibility in ((room_id, "private"), (new_room, "public")):
        response = call(open_server, "GET", "/directory/list/room/" + quote(room, safe=""))
        assert response.json() == {"visibility": visibility}


def test_unpublished_room_stays_out_of_the_directory(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, room_version="10", preset="public_chat")
    new_room = upgraded(open_server, alice, room_id, "11")
    assert new_room not in public_room_ids(open_server, alice)


def test_only_users_with_tombstone_power_can_upgrade(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    room_id = create_room(open_server, alice, room_version="10", preset="public_chat")
    assert join(open_server, bob, room_id).status == 200

    for token in (bob, carol):  # a member without the power, and a stranger
        refused = upgrade(open_server, token, room_id, "11")
        assert (refused.status, refused.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert state(open_server, alice, room_id, "m.room.tombstone") is None

    unknown = upgrade(open_server, alice, "!nowhere:localhost", "11")
    assert unknown.status == 404

    # Bob may send tombstones but is below what copying the state needs (100 for
    # the power levels): he is raised in the new room while it is built, then the
    # original levels are restored, as Synapse does.
    levels = state(open_server, alice, room_id, "m.room.power_levels")
    levels["events"]["m.room.tombstone"] = 0
    put_state(open_server, alice, room_id, "m.room.power_levels", levels)
    new_room = upgraded(open_server, bob, room_id, "11")
    restored = state_event(open_server, bob, new_room, "m.room.power_levels")
    assert restored["sender"] == BOB
    assert restored["content"] == levels
    assert restored["unsigned"]["prev_content"]["users"][BOB] == 100


def test_unknown_version_is_m_unsupported_room_version(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, room_version="10")

    refused = upgrade(open_server, alice, room_id, "999")
    assert (refused.status, refused.json()["errcode"]) == (400, "M_UNSUPPORTED_ROOM_VERSION")
    missing = call(open_server, "POST", f"/rooms/{quote(room_id)}/upgrade", token=alice, body={})
    assert (missing.status, missing.json()["errcode"]) == (400, "M_MISSING_PARAM")
    assert state(open_server, alice, room_id, "m.room.tombstone") is None


def test_upgrading_again_returns_the_successor_or_refuses_another_version(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, room_version="10")
    new_room = upgraded(open_server, alice, room_id, "11")

    assert upgraded(open_server, alice, room_id, "11") == new_room
    other = upgrade(open_server, alice, room_id, "12")
    assert (other.status, other.json()["errcode"]) == (400, "M_BAD_STATE")
    # The successor itself can be upgraded in turn.
    newest = upgraded(open_server, alice, new_room, "12")
    assert state(open_server, alice, newest, "m.room.create")["predecessor"]["room_id"] == new_room


def test_joining_the_successor_carries_tags_direct_and_push_rules_over(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    room_id = create_room(open_server, alice, room_version="10", preset="public_chat")
    assert join(open_server, bob, room_id).status == 200

    def put(token: str, path: str, body: Any) -> None:
        response = call(open_server, "PUT", path, token=token, body=body)
        assert response.status == 200, response.body

    put(alice, f"/user/{ALICE}/rooms/{quote(room_id)}/tags/m.favourite", {"order": 0.1})
    put(bob, f"/user/{BOB}/rooms/{quote(room_id)}/tags/u.work", {"order": 0.5})
    put(bob, f"/user/{BOB}/account_data/m.direct", {ALICE: [room_id, "!other:localhost"]})
    put(bob, f"/pushrules/global/room/{quote(room_id)}", {"actions": []})
    put(
        bob,
        "/pushrules/global/override/quiet-lounge",
        {
            "conditions": [{"kind": "event_match", "key": "room_id", "pattern": room_id}],
            "actions": [],
        },
    )

    new_room = upgraded(open_server, alice, room_id, "11")

    def tags(token: str, user_id: str, room: str) -> Any:
        response = call(
            open_server, "GET", f"/user/{user_id}/rooms/{quote(room)}/tags", token=token
        )
        assert response.status == 200, response.body
        return response.json()["tags"]

    # The upgrader joined the new room as it was created.
    assert tags(alice, ALICE, new_room) == {"m.favourite": {"order": 0.1}}
    # Bob's settings follow him when he joins, not before.
    assert tags(bob, BOB, new_room) == {}
    assert join(open_server, bob, new_room).status == 200
    assert tags(bob, BOB, new_room) == {"u.work": {"order": 0.5}}
    direct = call(open_server, "GET", f"/user/{BOB}/account_data/m.direct", token=bob)
    assert direct.json() == {ALICE: [room_id, "!other:localhost", new_room]}
    room_rule = call(open_server, "GET", f"/pushrules/global/room/{quote(new_room)}", token=bob)
    assert room_rule.status == 200, room_rule.body
    assert room_rule.json()["actions"] == []
    override = call(
        open_server, "GET", f"/pushrules/global/override/quiet-lounge-{quote(new_room)}", token=bob
    )
    assert override.status == 200, override.body
    assert override.json()["conditions"] == [
        {"kind": "event_match", "key": "room_id", "pattern": new_room}
    ]
    # The originals stay.
    old_rule = call(open_server, "GET", f"/pushrules/global/room/{quote(room_id)}", token=bob)
    assert old_rule.status == 200
    # Someone who was never in the old room brings nothing along.
    assert join(open_server, carol, new_room).status == 200
    carol_rule = call(open_server, "GET", f"/pushrules/global/room/{quote(new_room)}", token=carol)
    assert carol_rule.status == 404


def test_bans_are_carried_over(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    eve = register(open_server, "eve")["access_token"]
    room_id = create_room(open_server, alice, room_version="10", preset="public_chat")
    assert join(open_server, eve, room_id).status == 200
    banned = call(
        open_server,
        "POST",
        f"/rooms/{quote(room_id)}/ban",
        token=alice,
        body={"user_id": "@eve:localhost", "reason": "spam"},
    )
    assert banned.status == 200, banned.body

    new_room = upgraded(open_server, alice, room_id, "11")

    member = state(open_server, alice, new_room, "m.room.member", "@eve:localhost")
    assert member["membership"] == "ban"
    assert member["reason"] == "spam"
    refused = join(open_server, eve, new_room)
    assert (refused.status, refused.json()["errcode"]) == (403, "M_FORBIDDEN")


@pytest.mark.parametrize("old_version", ["1", "10"])
def test_upgrade_to_v12_makes_the_upgrader_a_creator(
    open_server: ServerProcess, old_version: str
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(
        open_server, alice, room_version=old_version, preset="public_chat", name="Old"
    )
    assert join(open_server, bob, room_id).status == 200

    new_room = upgraded(open_server, alice, room_id, "12", additional_creators=[BOB])

    # v12 room IDs are the create event's hash, without a server name.
    assert room_id.endswith(":localhost")
    assert ":" not in new_room
    create = state_event(open_server, alice, new_room, "m.room.create")
    assert create["content"]["room_version"] == "12"
    assert create["content"]["additional_creators"] == [BOB]
    assert "creator" not in create["content"]
    assert create["content"]["predecessor"]["room_id"] == room_id
    assert create["sender"] == ALICE
    assert state(open_server, alice, new_room, "m.room.name") == {"name": "Old"}
    levels = state(open_server, alice, new_room, "m.room.power_levels")
    assert ALICE not in levels["users"] and BOB not in levels["users"]
    # Creators have unbounded power: bob joins and acts as one.
    assert join(open_server, bob, new_room).status == 200
    put_state(open_server, bob, new_room, "m.room.topic", {"topic": "new home"})
    assert state(open_server, alice, room_id, "m.room.tombstone")["replacement_room"] == new_room


def test_upgrade_from_v12_to_v11_keeps_the_creator_in_charge(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(
        open_server,
        alice,
        room_version="12",
        preset="public_chat",
        power_level_content_override={"users": {BOB: 100}},
    )
    assert ":" not in room_id
    assert join(open_server, bob, room_id).status == 200

    new_room = upgraded(open_server, alice, room_id, "11")

    assert new_room.endswith(":localhost")
    create = state_event(open_server, alice, new_room, "m.room.create")
    assert create["content"]["room_version"] == "11"
    assert create["content"]["predecessor"] == {
        "room_id": room_id,
        "event_id": create["content"]["predecessor"]["event_id"],
    }
    levels = state(open_server, alice, new_room, "m.room.power_levels")
    # Alice was a creator (unbounded power): she keeps the top level of the room.
    assert levels["users"][BOB] == 100
    assert levels["users"][ALICE] == max(levels["events"].values()) == 150
    put_state(open_server, alice, new_room, "m.room.name", {"name": "Back to v11"})


def test_a_room_merely_claiming_a_predecessor_gets_no_settings(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, room_version="10", preset="public_chat")
    assert join(open_server, bob, room_id).status == 200
    tag_path = f"/user/{BOB}/rooms/{quote(room_id)}/tags/u.work"
    assert call(open_server, "PUT", tag_path, token=bob, body={}).status == 200
    impostor = create_room(
        open_server,
        alice,
        room_version="10",
        preset="public_chat",
        creation_content={"predecessor": {"room_id": room_id}},
    )
    upgraded(open_server, alice, room_id, "11")

    # The old room's tombstone names the real successor, not this room.
    assert join(open_server, bob, impostor).status == 200
    tags = call(open_server, "GET", f"/user/{BOB}/rooms/{quote(impostor)}/tags", token=bob)
    assert tags.json() == {"tags": {}}
