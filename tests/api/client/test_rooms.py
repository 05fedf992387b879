"""Creating rooms, membership and sending, over HTTP against the real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.matrix import call, register, running_server
from tests.support.server_process import ServerProcess


def create_room(server: ServerProcess, token: str, **body: Any) -> str:
    response = call(server, "POST", "/createRoom", token=token, body=body)
    assert response.status == 200, response.body
    room_id: str = response.json()["room_id"]
    return room_id


def create_public_room_with_history(server: ServerProcess, token: str, visibility: str) -> str:
    """A public room whose history visibility is ``visibility`` from its creation."""
    return create_room(
        server,
        token,
        preset="public_chat",
        initial_state=[
            {"type": "m.room.history_visibility", "content": {"history_visibility": visibility}}
        ],
    )


def send_text(server: ServerProcess, token: str, room_id: str, body: str, txn: str) -> Any:
    return call(
        server,
        "PUT",
        f"/rooms/{room_id}/send/m.room.message/{txn}",
        token=token,
        body={"msgtype": "m.text", "body": body},
    )


def test_private_group_invite_join_and_talk(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="private_chat", name="Team", topic="Plans")
    # Not invited yet: the room is invite-only.
    refused = call(open_server, "POST", f"/rooms/{room_id}/join", token=bob, body={})
    assert (refused.status, refused.json()["errcode"]) == (403, "M_FORBIDDEN")
    invite = call(
        open_server,
        "POST",
        f"/rooms/{room_id}/invite",
        token=alice,
        body={"user_id": "@bob:localhost"},
    )
    assert invite.status == 200, invite.body
    joined = call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    assert joined.json() == {"room_id": room_id}
    sent = send_text(open_server, bob, room_id, "hello", "t1")
    assert sent.status == 200, sent.body
    event_id = sent.json()["event_id"]
    event = call(open_server, "GET", f"/rooms/{room_id}/event/{event_id}", token=alice).json()
    assert event["content"]["body"] == "hello"
    assert event["sender"] == "@bob:localhost"
    name = call(open_server, "GET", f"/rooms/{room_id}/state/m.room.name", token=bob)
    assert name.json() == {"name": "Team"}
    members = call(open_server, "GET", f"/rooms/{room_id}/joined_members", token=bob).json()
    assert sorted(members["joined"]) == ["@alice:localhost", "@bob:localhost"]
    rooms = call(open_server, "GET", "/joined_rooms", token=bob).json()
    assert rooms == {"joined_rooms": [room_id]}


def test_send_is_idempotent_per_transaction(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    first = send_text(open_server, alice, room_id, "once", "same-txn").json()["event_id"]
    again = send_text(open_server, alice, room_id, "once", "same-txn").json()["event_id"]
    assert first == again
    other = send_text(open_server, alice, room_id, "twice", "other-txn").json()["event_id"]
    assert other != first


def test_muted_member_cannot_send(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/rooms/{room_id}/join", token=bob, body={})
    levels = call(open_server, "GET", f"/rooms/{room_id}/state/m.room.power_levels", token=alice)
    content = levels.json()
    content["users"]["@bob:localhost"] = -1
    put = call(
        open_server,
        "PUT",
        f"/rooms/{room_id}/state/m.room.power_levels",
        token=alice,
        body=content,
    )
    assert put.status == 200, put.body
    refused = send_text(open_server, bob, room_id, "can I talk?", "t1")
    assert (refused.status, refused.json()["errcode"]) == (403, "M_FORBIDDEN")
    rename = call(
        open_server,
        "PUT",
        f"/rooms/{room_id}/state/m.room.name/",
        token=bob,
        body={"name": "mine"},
    )
    assert rename.status == 403


def test_one_user_creating_rooms_at_once_gets_distinct_rooms(open_server: ServerProcess) -> None:
    from concurrent.futures import ThreadPoolExecutor

    alice = register(open_server, "alice")["access_token"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(
            pool.map(
                lambda _: call(open_server, "POST", "/createRoom", token=alice, body={}),
                range(8),
            )
        )
    assert [r.status for r in responses] == [200] * 8
    assert len({r.json()["room_id"] for r in responses}) == 8


def test_a_refused_create_room_leaves_no_room_alias_or_invite(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    # Alice keeps power to set the name but not to invite: the last event of the
    # request is refused, after the alias, the name and the preset state passed.
    refused = call(
        open_server,
        "POST",
        "/createRoom",
        token=alice,
        body={
            "room_version": "11",
            "room_alias_name": "halfway",
            "name": "Half a room",
            "invite": ["@bob:localhost"],
            "power_level_content_override": {"invite": 101},
        },
    )
    assert (refused.status, refused.json()["errcode"]) == (400, "M_INVALID_ROOM_STATE")
    assert "@bob:localhost" in refused.json()["error"]
    assert call(open_server, "GET", "/joined_rooms", token=alice).json() == {"joined_rooms": []}
    missing = call(open_server, "GET", "/directory/room/%23halfway:localhost")
    assert (missing.status, missing.json()["errcode"]) == (404, "M_NOT_FOUND")
    for token in (alice, bob):
        rooms = call(open_server, "GET", "/sync", token=token).json()["rooms"]
        assert not any(rooms.get(section) for section in ("join", "invite", "leave", "knock"))
    # The alias was never taken, so the corrected request may have it.
    room_id = create_room(open_server, alice, room_alias_name="halfway", invite=["@bob:localhost"])
    assert call(open_server, "GET", "/joined_rooms", token=alice).json() == {
        "joined_rooms": [room_id]
    }
    invited = call(open_server, "GET", "/sync", token=bob).json()["rooms"]["invite"]
    assert list(invited) == [room_id]


def test_inviting_yourself_at_creation_is_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    response = call(
        open_server, "POST", "/createRoom", token=alice, body={"invite": ["@alice:localhost"]}
    )
    assert (response.status, response.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert call(open_server, "GET", "/joined_rooms", token=alice).json() == {"joined_rooms": []}


def test_create_room_rejects_bad_input(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    cases: list[tuple[Any, int, str]] = [
        ({"preset": "party"}, 400, "M_BAD_JSON"),
        ({"room_version": "999"}, 400, "M_UNSUPPORTED_ROOM_VERSION"),
        ({"initial_state": [{"type": "m.room.name"}]}, 400, "M_BAD_JSON"),
        ({"invite": ["not-a-user"]}, 400, "M_INVALID_PARAM"),
        ({"name": 5}, 400, "M_BAD_JSON"),
        (
            {
                # In v12 the creator's power is infinite; before, 200 is out of reach.
                "room_version": "11",
                "power_level_content_override": {"events": {"m.room.name": 200}},
                "name": "x",
            },
            400,
            "M_INVALID_ROOM_STATE",
        ),
    ]
    for body, status, errcode in cases:
        response = call(open_server, "POST", "/createRoom", token=alice, body=body)
        assert (response.status, response.json()["errcode"]) == (status, errcode), body
    aliased = create_room(open_server, alice, room_alias_name="lobby")
    taken = call(open_server, "POST", "/createRoom", token=alice, body={"room_alias_name": "lobby"})
    assert (taken.status, taken.json()["errcode"]) == (400, "M_ROOM_IN_USE")
    resolved = call(open_server, "GET", "/directory/room/%23lobby:localhost").json()
    assert resolved["room_id"] == aliased


def encryption_of(server: ServerProcess, token: str, room_id: str) -> Any:
    """The room's ``m.room.encryption`` content, or ``None`` when it has none."""
    response = call(server, "GET", f"/rooms/{room_id}/state/m.room.encryption/", token=token)
    if response.status == 404:
        return None
    assert response.status == 200, response.body
    return response.json()


MEGOLM = {"algorithm": "m.megolm.v1.aes-sha2"}


def test_private_rooms_and_direct_messages_are_encrypted_by_default(
    open_server: ServerProcess,
) -> None:
    """``encryption_enabled_by_default_for_room_type`` is ``invite`` unless configured.

    spec: client-server-api/modules/end_to_end_encryption.md#mroomencryption
    """
    alice = register(open_server, "alice")["access_token"]
    register(open_server, "bob")
    rooms = {
        "private_chat": create_room(open_server, alice, preset="private_chat"),
        "trusted_private_chat": create_room(open_server, alice, preset="trusted_private_chat"),
        # No preset: a private room gets private_chat, a public one public_chat.
        "no preset": create_room(open_server, alice),
        "direct": create_room(open_server, alice, is_direct=True, invite=["@bob:localhost"]),
        "public_chat": create_room(open_server, alice, preset="public_chat"),
        "public visibility": create_room(open_server, alice, visibility="public"),
    }
    encryption = {kind: encryption_of(open_server, alice, room) for kind, room in rooms.items()}
    assert encryption == {
        "private_chat": MEGOLM,
        "trusted_private_chat": MEGOLM,
        "no preset": MEGOLM,
        "direct": MEGOLM,
        "public_chat": None,
        "public visibility": None,
    }


def test_default_encryption_follows_initial_state_and_keeps_a_clients_own(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    own = {**MEGOLM, "rotation_period_ms": 3_600_000, "rotation_period_msgs": 50}
    room_id = create_room(
        open_server,
        alice,
        preset="private_chat",
        name="Secrets",
        initial_state=[
            {"type": "m.room.encryption", "content": own},
            {"type": "m.room.topic", "content": {"topic": "first"}},
        ],
    )
    assert encryption_of(open_server, alice, room_id) == own
    # Content with no algorithm does not turn the default off (as in Synapse).
    emptied = create_room(
        open_server,
        alice,
        preset="private_chat",
        initial_state=[{"type": "m.room.encryption", "content": {}}],
    )
    assert encryption_of(open_server, alice, emptied) == MEGOLM
    plain_id = create_room(
        open_server,
        alice,
        preset="private_chat",
        name="Plain order",
        initial_state=[{"type": "m.room.topic", "content": {"topic": "first"}}],
    )
    timeline = call(
        open_server, "GET", f"/rooms/{plain_id}/messages?dir=f&limit=50", token=alice
    ).json()["chunk"]
    types = [event["type"] for event in timeline]
    # spec order: preset state, initial_state (the default encryption with it), name.
    assert types.count("m.room.encryption") == 1
    assert (
        types.index("m.room.guest_access")
        < types.index("m.room.topic")
        < types.index("m.room.encryption")
        < types.index("m.room.name")
    )
    public_id = create_room(
        open_server,
        alice,
        preset="public_chat",
        initial_state=[{"type": "m.room.encryption", "content": MEGOLM}],
    )
    # A public room is encrypted when its creator asks.
    assert encryption_of(open_server, alice, public_id) == MEGOLM


@pytest.mark.parametrize("setting", ["all", "off"])
def test_encryption_by_default_can_cover_every_room_or_none(
    tmp_path: Path, database_config: dict[str, Any], setting: str
) -> None:
    with running_server(
        tmp_path, database_config, encryption_enabled_by_default_for_room_type=setting
    ) as server:
        alice = register(server, f"alice{setting}")["access_token"]
        private = create_room(server, alice, preset="private_chat")
        public = create_room(server, alice, preset="public_chat")
        encrypted = setting == "all"
        assert encryption_of(server, alice, private) == (MEGOLM if encrypted else None)
        assert encryption_of(server, alice, public) == (MEGOLM if encrypted else None)
