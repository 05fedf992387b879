"""Membership over HTTP: kick, ban, unban, leave, forget, knock, rate limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.client.test_rooms import create_room, send_text
from tests.support.matrix import call, register, running_server
from tests.support.server_process import ServerProcess


def member(server: ServerProcess, token: str, room_id: str, user_id: str) -> str | None:
    response = call(server, "GET", f"/rooms/{room_id}/state/m.room.member/{user_id}", token=token)
    if response.status == 404:
        return None
    membership: str = response.json()["membership"]
    return membership


def test_kicked_member_cannot_send_and_may_rejoin_a_public_room(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    kick = call(
        open_server,
        "POST",
        f"/rooms/{room_id}/kick",
        token=alice,
        body={"user_id": "@bob:localhost", "reason": "spam"},
    )
    assert kick.status == 200, kick.body
    assert member(open_server, alice, room_id, "@bob:localhost") == "leave"
    refused = send_text(open_server, bob, room_id, "hi", "t1")
    assert refused.status == 403
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200


def test_members_without_power_cannot_kick_or_ban(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    for action in ("kick", "ban"):
        response = call(
            open_server,
            "POST",
            f"/rooms/{room_id}/{action}",
            token=bob,
            body={"user_id": "@alice:localhost"},
        )
        assert (response.status, response.json()["errcode"]) == (403, "M_FORBIDDEN"), action


def test_banned_user_cannot_join_until_unbanned(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    ban = call(
        open_server,
        "POST",
        f"/rooms/{room_id}/ban",
        token=alice,
        body={"user_id": "@bob:localhost"},
    )
    assert ban.status == 200
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 403
    not_banned = call(
        open_server,
        "POST",
        f"/rooms/{room_id}/unban",
        token=alice,
        body={"user_id": "@carol:localhost"},
    )
    assert not_banned.status == 403
    unban = call(
        open_server,
        "POST",
        f"/rooms/{room_id}/unban",
        token=alice,
        body={"user_id": "@bob:localhost"},
    )
    assert unban.status == 200
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200


def test_leave_then_forget(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    still_in = call(open_server, "POST", f"/rooms/{room_id}/forget", token=alice, body={})
    assert still_in.status == 400
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=alice, body={}).status == 200
    assert call(open_server, "GET", "/joined_rooms", token=alice).json() == {"joined_rooms": []}
    assert call(open_server, "POST", f"/rooms/{room_id}/forget", token=alice, body={}).status == 200
    # Leaving twice is refused: there is nothing to leave.
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=alice, body={}).status == 403


def test_knock_then_accepted_by_invite(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(
        open_server,
        alice,
        initial_state=[{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}],
    )
    knock = call(open_server, "POST", f"/knock/{room_id}", token=bob, body={"reason": "let me in"})
    assert knock.status == 200, knock.body
    assert member(open_server, alice, room_id, "@bob:localhost") == "knock"
    invite = call(
        open_server,
        "POST",
        f"/rooms/{room_id}/invite",
        token=alice,
        body={"user_id": "@bob:localhost"},
    )
    assert invite.status == 200
    assert call(open_server, "POST", f"/rooms/{room_id}/join", token=bob, body={}).status == 200


def test_unknown_rooms_and_bad_ids(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    unknown = call(open_server, "POST", "/join/!nowhere:localhost", token=alice, body={})
    assert (unknown.status, unknown.json()["errcode"]) == (404, "M_NOT_FOUND")
    bad = call(open_server, "POST", "/join/not-a-room", token=alice, body={})
    assert (bad.status, bad.json()["errcode"]) == (400, "M_INVALID_PARAM")
    send = send_text(open_server, alice, "!nowhere:localhost", "x", "t")
    assert send.status in (403, 404)
    bad_target = call(
        open_server, "POST", "/rooms/!nowhere:localhost/invite", token=alice, body={"user_id": 5}
    )
    assert (bad_target.status, bad_target.json()["errcode"]) == (400, "M_BAD_JSON")


def test_invites_are_rate_limited(tmp_path: Path, database_config: dict[str, Any]) -> None:
    limits = {"per_issuer": {"per_second": 0.001, "burst_count": 2}}
    with running_server(tmp_path, database_config, rc_invites=limits) as server:
        alice = register(server, "alice")["access_token"]
        room_id = create_room(server, alice)
        statuses = []
        for name in ("b1", "b2", "b3"):
            register(server, name)
            response = call(
                server,
                "POST",
                f"/rooms/{room_id}/invite",
                token=alice,
                body={"user_id": f"@{name}:localhost"},
            )
            statuses.append(response.status)
        assert statuses == [200, 200, 429]
        assert response.json()["errcode"] == "M_LIMIT_EXCEEDED"
        assert response.json()["retry_after_ms"] > 0
