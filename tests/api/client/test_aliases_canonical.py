"""Deleting an alias takes it out of the room's canonical alias; what the canonical
alias event may name.

spec: client-server-api/_index.md#mroomcanonical_alias,
#put_matrixclientv3roomsroomidstateeventtypestatekey (400 M_INVALID_PARAM, M_BAD_ALIAS);
clearing a deleted alias is what Synapse does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.api.client.test_rooms import create_room
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def alias_path(alias: str) -> str:
    return f"/directory/room/{quote(alias)}"


def add_alias(server: ServerProcess, token: str, alias: str, room_id: str) -> None:
    created = call(server, "PUT", alias_path(alias), token=token, body={"room_id": room_id})
    assert created.status == 200, created.body


def put_canonical(server: ServerProcess, token: str, room_id: str, content: dict[str, Any]) -> Any:
    return call(
        server, "PUT", f"/rooms/{room_id}/state/m.room.canonical_alias", token=token, body=content
    )


def canonical(server: ServerProcess, token: str, room_id: str) -> Any:
    response = call(server, "GET", f"/rooms/{room_id}/state/m.room.canonical_alias", token=token)
    assert response.status == 200, response.body
    return response.json()


def test_deleting_the_canonical_alias_clears_it(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    for alias in ("#main:localhost", "#alt1:localhost", "#alt2:localhost"):
        add_alias(open_server, alice, alias, room_id)
    content = {"alias": "#main:localhost", "alt_aliases": ["#alt1:localhost", "#alt2:localhost"]}
    assert put_canonical(open_server, alice, room_id, content).status == 200
    assert call(open_server, "DELETE", alias_path("#main:localhost"), token=alice).status == 200
    assert canonical(open_server, alice, room_id) == {
        "alt_aliases": ["#alt1:localhost", "#alt2:localhost"]
    }
    # Deleting one of the alt aliases takes it out of the list.
    assert call(open_server, "DELETE", alias_path("#alt1:localhost"), token=alice).status == 200
    assert canonical(open_server, alice, room_id) == {"alt_aliases": ["#alt2:localhost"]}


def test_deleting_an_unrelated_alias_leaves_the_canonical_alias(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    add_alias(open_server, alice, "#main:localhost", room_id)
    add_alias(open_server, alice, "#other:localhost", room_id)
    first = put_canonical(open_server, alice, room_id, {"alias": "#main:localhost"})
    assert first.status == 200
    assert call(open_server, "DELETE", alias_path("#other:localhost"), token=alice).status == 200
    state = call(
        open_server,
        "GET",
        f"/rooms/{room_id}/state/m.room.canonical_alias?format=event",
        token=alice,
    ).json()
    assert state["event_id"] == first.json()["event_id"]


def test_canonical_alias_validation_errors(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    other_room = create_room(open_server, alice, preset="public_chat")
    add_alias(open_server, alice, "#here:localhost", room_id)
    add_alias(open_server, alice, "#there:localhost", other_room)

    def refused(content: dict[str, Any]) -> tuple[int, str]:
        response = put_canonical(open_server, alice, room_id, content)
        return response.status, response.json().get("errcode", "")

    # Aliases that exist but name another room, or do not exist at all.
    assert refused({"alias": "#there:localhost"}) == (400, "M_BAD_ALIAS")
    assert refused({"alt_aliases": ["#there:localhost"]}) == (400, "M_BAD_ALIAS")
    assert refused({"alt_aliases": ["#nowhere:localhost"]}) == (400, "M_BAD_ALIAS")
    # Malformed: not an alias, not a string, not a list.
    assert refused({"alt_aliases": ["not-an-alias"]}) == (400, "M_INVALID_PARAM")
    assert refused({"alias": "here:localhost"}) == (400, "M_INVALID_PARAM")
    assert refused({"alt_aliases": [5]}) == (400, "M_INVALID_PARAM")
    assert refused({"alt_aliases": "#here:localhost"}) == (400, "M_INVALID_PARAM")
    ok = put_canonical(
        open_server,
        alice,
        room_id,
        {"alias": "#here:localhost", "alt_aliases": ["#here:localhost"]},
    )
    assert ok.status == 200, ok.body
