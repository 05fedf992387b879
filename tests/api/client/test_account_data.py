"""Account data endpoints, over HTTP."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.support.http import Response
from tests.support.matrix import CLIENT, auth, call, register
from tests.support.server_process import ServerProcess

ALICE = "@alice:localhost"
ROOM = "!room:localhost"


def errcode(response: Response) -> tuple[int, str]:
    return response.status, response.json()["errcode"]


def test_global_account_data_round_trip(open_server: ServerProcess) -> None:
    token = register(open_server, "alice")["access_token"]
    path = f"/user/{ALICE}/account_data/org.example.config"
    assert errcode(call(open_server, "GET", path, token=token)) == (404, "M_NOT_FOUND")
    put = call(open_server, "PUT", path, token=token, body={"theme": "dark", "n": [1, 2]})
    assert (put.status, put.json()) == (200, {})
    assert call(open_server, "GET", path, token=token).json() == {"theme": "dark", "n": [1, 2]}
    # Replacing, through the r0 prefix too; {} is stored like any other content.
    response = open_server.request(
        "PUT", "/_matrix/client/r0" + path, json_body={}, headers=auth(token)
    )
    assert response.status == 200
    assert call(open_server, "GET", path, token=token).json() == {}
    # The spec defines no DELETE: clients overwrite the content instead.
    assert errcode(call(open_server, "DELETE", path, token=token)) == (405, "M_UNRECOGNIZED")
    # Server-managed types can be read, never set, globally or per room.
    for managed in ("m.fully_read", "m.push_rules"):
        for managed_path in (
            f"/user/{ALICE}/account_data/{managed}",
            f"/user/{ALICE}/rooms/{ROOM}/account_data/{managed}",
        ):
            put = call(open_server, "PUT", managed_path, token=token, body={"event_id": "$x"})
            assert errcode(put) == (405, "M_BAD_JSON"), managed_path
    assert errcode(
        call(open_server, "GET", f"/user/{ALICE}/account_data/m.fully_read", token=token)
    ) == (
        404,
        "M_NOT_FOUND",
    )


def test_room_account_data_is_per_room(open_server: ServerProcess) -> None:
    token = register(open_server, "alice")["access_token"]
    room_path = f"/user/{ALICE}/rooms/{ROOM}/account_data/org.example.room"
    assert errcode(call(open_server, "GET", room_path, token=token)) == (404, "M_NOT_FOUND")
    assert call(open_server, "PUT", room_path, token=token, body={"pinned": True}).status == 200
    assert call(open_server, "GET", room_path, token=token).json() == {"pinned": True}
    other_room = f"/user/{ALICE}/rooms/!other:localhost/account_data/org.example.room"
    assert errcode(call(open_server, "GET", other_room, token=token)) == (404, "M_NOT_FOUND")
    # No fallback between room and global account data, either way.
    global_path = f"/user/{ALICE}/account_data/org.example.room"
    assert errcode(call(open_server, "GET", global_path, token=token)) == (404, "M_NOT_FOUND")
    # A v12-style room ID (no server name) is a room ID too.
    v12_room = "!" + "A" * 43
    v12_path = f"/user/{ALICE}/rooms/{v12_room}/account_data/org.example.room"
    assert call(open_server, "PUT", v12_path, token=token, body={"v": 12}).status == 200
    assert call(open_server, "GET", v12_path, token=token).json() == {"v": 12}
    for bad_room in ("@alice:localhost", "!no_server_name", "%23alias:localhost", "!a:bad%20host"):
        for method, body in (("GET", None), ("PUT", {})):
            path = f"/user/{ALICE}/rooms/{bad_room}/account_data/org.example.room"
            response = call(open_server, method, path, token=token, body=body)
            assert errcode(response) == (400, "M_INVALID_PARAM"), (method, bad_room)


def test_only_the_owner_may_read_or_write(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    path = f"/user/{ALICE}/account_data/org.example.secret"
    room_path = f"/user/{ALICE}/rooms/{ROOM}/account_data/org.example.secret"
    for target in (path, room_path):
        assert call(open_server, "PUT", target, token=alice, body={"s": 1}).status == 200
        assert errcode(call(open_server, "GET", target, token=bob)) == (403, "M_FORBIDDEN")
        put = call(open_server, "PUT", target, token=bob, body={"s": 2})
        assert errcode(put) == (403, "M_FORBIDDEN")
        assert errcode(call(open_server, "GET", target)) == (401, "M_MISSING_TOKEN")
        assert call(open_server, "GET", target, token=alice).json() == {"s": 1}
    # Bob's own data under the same type is separate.
    bob_path = "/user/@bob:localhost/account_data/org.example.secret"
    assert errcode(call(open_server, "GET", bob_path, token=bob)) == (404, "M_NOT_FOUND")


def test_bad_input_is_refused(open_server: ServerProcess) -> None:
    token = register(open_server, "alice")["access_token"]
    headers = {**auth(token), "Content-Type": "application/json"}
    for path in (
        f"/user/{ALICE}/account_data/org.example.x",
        f"/user/{ALICE}/rooms/{ROOM}/account_data/org.example.x",
    ):
        for raw, expected in (
            (b"{not json", "M_NOT_JSON"),
            (b"", "M_NOT_JSON"),
            (b"[1, 2]", "M_BAD_JSON"),
            (b'"text"', "M_BAD_JSON"),
        ):
            response = open_server.request("PUT", CLIENT + path, body=raw, headers=headers)
            assert errcode(response) == (400, expected), (path, raw)
    ignored = f"/user/{ALICE}/account_data/m.ignored_user_list"
    bad_lists: list[dict[str, Any]] = [
        {},
        {"ignored_users": ["@bob:localhost"]},
        {"ignored_users": {"bob": {}}},
        {"ignored_users": {"@bob:localhost": 1}},
    ]
    for content in bad_lists:
        put = call(open_server, "PUT", ignored, token=token, body=content)
        assert errcode(put) == (400, "M_BAD_JSON"), content
    good: dict[str, Any] = {"ignored_users": {"@bob:localhost": {}, "@carol:remote.example": {}}}
    assert call(open_server, "PUT", ignored, token=token, body=good).status == 200
    assert call(open_server, "GET", ignored, token=token).json() == good
    # Types too long to be event types, or holding NUL, are refused (never a 500).
    for bad_type in ("x" * 256, quote("a\x00b")):
        for method in ("GET", "PUT"):
            response = call(
                open_server,
                method,
                f"/user/{ALICE}/account_data/{bad_type}",
                token=token,
                body={} if method == "PUT" else None,
            )
            assert errcode(response) == (400, "M_INVALID_PARAM"), (method, bad_type)
