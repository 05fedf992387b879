"""``POST /user_directory/search`` over HTTP, on both engines: what is matched (parts of
display names and user IDs, a typo), who may be found (shared rooms, public rooms,
``search_all_users``), and that profile changes, room changes, new accounts and
deactivation show at once.

spec: client-server-api/_index.md#post_matrixclientv3user_directorysearch
(data/api/client-server/users.yaml)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.api.client.test_rooms import create_room
from tests.support.matrix import PASSWORD, call, register, running_server
from tests.support.server_process import ServerProcess


def search(server: ServerProcess, token: str, term: str, **extra: Any) -> dict[str, Any]:
    response = call(
        server,
        "POST",
        "/user_directory/search",
        token=token,
        body={"search_term": term, **extra},
    )
    assert response.status == 200, response.body
    result: dict[str, Any] = response.json()
    return result


def found(server: ServerProcess, token: str, term: str) -> list[str]:
    return [hit["user_id"] for hit in search(server, token, term)["results"]]


def eventually_found(server: ServerProcess, token: str, term: str, expected: list[str]) -> None:
    """Public-room flags follow the events stream, a moment after the event."""
    deadline = time.monotonic() + 15
    while (result := found(server, token, term)) != expected:
        assert time.monotonic() < deadline, f"{term!r}: {result} != {expected}"
        time.sleep(0.05)


def set_name(server: ServerProcess, token: str, user_id: str, name: str) -> None:
    response = call(
        server, "PUT", f"/profile/{user_id}/displayname", token=token, body={"displayname": name}
    )
    assert response.status == 200, response.body


def join(server: ServerProcess, token: str, room_id: str) -> None:
    assert call(server, "POST", f"/join/{room_id}", token=token, body={}).status == 200


def leave(server: ServerProcess, token: str, room_id: str) -> None:
    assert call(server, "POST", f"/rooms/{room_id}/leave", token=token, body={}).status == 200


def user(server: ServerProcess, localpart: str, name: str | None = None) -> tuple[str, str]:
    """(user ID, token) of a new account, with a display name if given."""
    account = register(server, localpart)
    if name is not None:
        set_name(server, account["access_token"], account["user_id"], name)
    return account["user_id"], account["access_token"]


def test_the_user_directory_finds_a_user_by_part_of_the_display_name_and_only_users_it_should(
    open_server: ServerProcess,
) -> None:
    server = open_server
    alice, alice_token = user(server, "alice", "Alice Searcher")
    john, john_token = user(server, "jsmith", "John Smith")
    hidden, hidden_token = user(server, "johnny", "Johnny Hidden")
    _, other_token = user(server, "other", "Other Person")
    # alice and John share a private room; Johnny is in a private room without her.
    shared = create_room(server, alice_token, preset="private_chat", invite=[john])
    join(server, john_token, shared)
    private = create_room(server, other_token, preset="private_chat", invite=[hidden])
    join(server, hidden_token, private)

    assert found(server, alice_token, "ohn") == [john]  # part of a display name
    assert found(server, alice_token, "SMITH") == [john]  # case aside
    assert found(server, alice_token, "jsmi") == [john]  # part of a user ID
    assert found(server, alice_token, john) == [john]  # a whole user ID
    assert found(server, alice_token, "jo") == [john]  # a short word: starts of words
    assert found(server, alice_token, "Jonh") == [john]  # a typo
    assert found(server, alice_token, "john smth") == [john]  # a typo in one of two words
    assert found(server, alice_token, "Hidden") == []
    hit = search(server, alice_token, "smith")["results"][0]
    assert hit == {"user_id": john, "display_name": "John Smith"}

    # Joined to a public room, Johnny can be found by anyone; not once he has left.
    public = create_room(server, other_token, preset="public_chat")
    join(server, hidden_token, public)
    eventually_found(server, alice_token, "hidden", [hidden])
    assert found(server, alice_token, "john") == [john, hidden]  # both prefixes: by name
    leave(server, hidden_token, public)
    assert found(server, alice_token, "hidden") == []
    # A room that stops being public stops showing its members.
    join(server, hidden_token, public)
    eventually_found(server, alice_token, "hidden", [hidden])
    rules = call(
        server,
        "PUT",
        f"/rooms/{public}/state/m.room.join_rules",
        token=other_token,
        body={"join_rule": "invite"},
    )
    assert rules.status == 200, rules.body
    eventually_found(server, alice_token, "hidden", [])
    # John leaves the room he shared with alice: she no longer finds him.
    leave(server, john_token, shared)
    assert found(server, alice_token, "smith") == []
    # Searchers may find themselves (as in Synapse).
    assert found(server, alice_token, "alice") == [alice]


def test_profile_changes_and_deactivation_show_at_once(open_server: ServerProcess) -> None:
    server = open_server
    _, alice_token = user(server, "alice2", "Alice Two")
    bob, bob_token = user(server, "bob2", "Robert Tables")
    room = create_room(server, alice_token, preset="public_chat")
    join(server, bob_token, room)
    eventually_found(server, alice_token, "tables", [bob])
    set_name(server, bob_token, bob, "Bobby Drop")
    assert found(server, alice_token, "tables") == []
    assert found(server, alice_token, "drop") == [bob]
    avatar = call(
        server,
        "PUT",
        f"/profile/{bob}/avatar_url",
        token=bob_token,
        body={"avatar_url": "mxc://localhost/abc"},
    )
    assert avatar.status == 200, avatar.body
    assert search(server, alice_token, "drop")["results"] == [
        {"user_id": bob, "display_name": "Bobby Drop", "avatar_url": "mxc://localhost/abc"}
    ]
    deactivate = call(
        server,
        "POST",
        "/account/deactivate",
        token=bob_token,
        body={
            "auth": {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": "bob2"},
                "password": PASSWORD,
            }
        },
    )
    assert deactivate.status == 200, deactivate.body
    assert found(server, alice_token, "drop") == []
    assert found(server, alice_token, "bob2") == []


def test_search_all_users_finds_users_without_a_room_in_common(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(
        tmp_path, database_config, user_directory={"search_all_users": True}
    ) as server:
        _, alice_token = user(server, "alice3")
        # Just registered, in no room, display name never changed: found all the same.
        carol, _ = user(server, "carol3")
        assert found(server, alice_token, "carol") == [carol]
        dave, _ = user(server, "dave3", "Dave Loner")
        assert found(server, alice_token, "loner") == [dave]


def test_a_disabled_directory_finds_nobody(tmp_path: Path, database_config: dict[str, Any]) -> None:
    with running_server(
        tmp_path, database_config, user_directory={"enabled": False, "search_all_users": True}
    ) as server:
        alice, alice_token = user(server, "alice4")
        assert search(server, alice_token, "alice4") == {"results": [], "limited": False}


def test_limit_and_limited(open_server: ServerProcess) -> None:
    server = open_server
    _, owner_token = user(server, "owner5", "Owner")
    room = create_room(server, owner_token, preset="public_chat")
    members = []
    for index in range(4):
        member, token = user(server, f"member5x{index}", f"Crowd Member {index}")
        join(server, token, room)
        members.append(member)
    eventually_found(server, owner_token, "crowd", members)
    assert search(server, owner_token, "crowd", limit=4) == search(server, owner_token, "crowd")
    assert search(server, owner_token, "crowd")["limited"] is False
    first_two = search(server, owner_token, "crowd", limit=2)
    assert [hit["user_id"] for hit in first_two["results"]] == members[:2]
    assert first_two["limited"] is True
    assert search(server, owner_token, "crowd", limit=0) == {"results": [], "limited": True}
    assert search(server, owner_token, "nobody at all") == {"results": [], "limited": False}
    assert search(server, owner_token, "   ") == {"results": [], "limited": False}


def test_bad_requests_are_refused_with_matrix_errors(open_server: ServerProcess) -> None:
    server = open_server
    _, token = user(server, "alice6")
    path = "/user_directory/search"
    cases: list[tuple[Any, int, str]] = [
        ({}, 400, "M_MISSING_PARAM"),
        ({"search_term": 5}, 400, "M_BAD_JSON"),
        ({"search_term": None}, 400, "M_BAD_JSON"),
        ({"search_term": "a", "limit": "10"}, 400, "M_BAD_JSON"),
        ({"search_term": "a", "limit": 1.5}, 400, "M_BAD_JSON"),
        ({"search_term": "a", "limit": True}, 400, "M_BAD_JSON"),
        ({"search_term": "a", "limit": -1}, 400, "M_INVALID_PARAM"),
        (["search_term"], 400, "M_BAD_JSON"),
    ]
    for body, status, errcode in cases:
        response = call(server, "POST", path, token=token, body=body)
        assert (response.status, response.json()["errcode"]) == (status, errcode), body
    unauthenticated = call(server, "POST", path, body={"search_term": "a"})
    assert unauthenticated.status == 401
    # A NUL or an absurd limit is no error: nothing matches, the limit is capped.
    assert search(server, token, "a\u0000b", limit=2**70)["results"] == []
