"""``PUT /rooms/{roomId}/typing/{userId}`` over HTTP, with rooms made through
``/createRoom`` and ``/join``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.api.client.test_receipts import create_room, join
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def typing(
    server: ServerProcess, token: str | None, room_id: str, user_id: str, body: Any
) -> tuple[int, Any]:
    path = f"/rooms/{quote(room_id)}/typing/{quote(user_id)}"
    response = call(server, "PUT", path, token=token, body=body)
    return response.status, response.json()


def test_members_start_and_stop_typing(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice)
    join(open_server, bob, room_id)
    bob_id = "@bob:localhost"
    assert typing(open_server, bob, room_id, bob_id, {"typing": True, "timeout": 30000}) == (
        200,
        {},
    )
    # Longer than the cap is accepted (and capped).
    assert typing(open_server, bob, room_id, bob_id, {"typing": True, "timeout": 10**12}) == (
        200,
        {},
    )
    assert typing(open_server, bob, room_id, bob_id, {"typing": False}) == (200, {})
    assert typing(open_server, bob, room_id, bob_id, {"typing": False, "timeout": "x"}) == (200, {})


def test_bad_typing_requests_are_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    room_id = create_room(open_server, alice)
    alice_id, carol_id = "@alice:localhost", "@carol:localhost"

    def refused(result: tuple[int, Any], status: int, errcode: str) -> None:
        assert (result[0], result[1]["errcode"]) == (status, errcode), result

    on = {"typing": True, "timeout": 1000}
    refused(typing(open_server, alice, room_id, carol_id, on), 403, "M_FORBIDDEN")
    refused(typing(open_server, carol, room_id, carol_id, on), 403, "M_FORBIDDEN")
    refused(typing(open_server, carol, "!nowhere:localhost", carol_id, on), 403, "M_FORBIDDEN")
    refused(typing(open_server, alice, room_id, alice_id, {}), 400, "M_MISSING_PARAM")
    refused(typing(open_server, alice, room_id, alice_id, {"typing": True}), 400, "M_MISSING_PARAM")
    refused(typing(open_server, alice, room_id, alice_id, {"typing": "yes"}), 400, "M_BAD_JSON")
    for timeout in ("1000", 1.5, True, None):
        refused(
            typing(open_server, alice, room_id, alice_id, {"typing": True, "timeout": timeout}),
            400,
            "M_BAD_JSON",
        )
    refused(
        typing(open_server, alice, room_id, alice_id, {"typing": True, "timeout": -1}),
        400,
        "M_INVALID_PARAM",
    )
    refused(typing(open_server, None, room_id, alice_id, on), 401, "M_MISSING_TOKEN")
    refused(typing(open_server, alice, room_id, alice_id, [on]), 400, "M_BAD_JSON")
