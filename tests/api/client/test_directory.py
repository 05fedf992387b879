"""Room aliases and the published room directory, over HTTP.

Tests that make rooms use ``/createRoom`` and ``/join`` (the rooms endpoints).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.support.accounts import register_with_secret
from tests.support.http import Response
from tests.support.matrix import call, login, register
from tests.support.server_process import ServerProcess


def alias_path(alias: str) -> str:
    return "/directory/room/" + quote(alias, safe="")


def visibility_path(room_id: str) -> str:
    return "/directory/list/room/" + quote(room_id, safe="")


def error(response: Response) -> tuple[int, str]:
    return response.status, response.json()["errcode"]


def create_room(server: ServerProcess, token: str, **body: Any) -> str:
    response = call(server, "POST", "/createRoom", token=token, body=body)
    assert response.status == 200, response.body
    room_id: str = response.json()["room_id"]
    return room_id


def join(server: ServerProcess, token: str, room: str) -> None:
    response = call(server, "POST", "/join/" + quote(room, safe=""), token=token, body={})
    assert response.status == 200, response.body


def public_rooms(server: ServerProcess, token: str | None = None, query: str = "") -> Any:
    response = call(server, "GET", "/publicRooms" + query, token=token)
    assert response.status == 200, response.body
    return response.json()


def search(server: ServerProcess, token: str, body: dict[str, Any]) -> Any:
    response = call(server, "POST", "/publicRooms", token=token, body=body)
    assert response.status == 200, response.body
    return response.json()


# --- needing no rooms ----------------------------------------------------------------


def test_alias_input_errors(open_server: ServerProcess) -> None:
    token = register(open_server, "alice")["access_token"]
    for alias in ("no-sigil:localhost", "#no-domain", "#bad:not a server"):
        assert error(call(open_server, "GET", alias_path(alias))) == (400, "M_INVALID_PARAM")
        put = call(open_server, "PUT", alias_path(alias), token=token, body={"room_id": "!r:x"})
        assert error(put) == (400, "M_INVALID_PARAM"), alias
    # Only this server's aliases can be created here.
    put = call(
        open_server,
        "PUT",
        alias_path("#a:elsewhere.org"),
        token=token,
        body={"room_id": "!r:localhost"},
    )
    assert error(put) == (400, "M_INVALID_PARAM")
    path = alias_path("#a:localhost")
    assert error(call(open_server, "PUT", path, token=token, body={})) == (400, "M_MISSING_PARAM")
    assert error(call(open_server, "PUT", path, token=token, body={"room_id": 5})) == (
        400,
        "M_BAD_JSON",
    )
    assert error(call(open_server, "PUT", path, token=token, body={"room_id": "bad"})) == (
        400,
        "M_INVALID_PARAM",
    )
    assert error(call(open_server, "PUT", path, token=token, body=[1])) == (400, "M_BAD_JSON")
    unknown_room = call(open_server, "PUT", path, token=token, body={"room_id": "!no:localhost"})
    assert error(unknown_room) == (404, "M_NOT_FOUND")
    assert error(call(open_server, "GET", path)) == (404, "M_NOT_FOUND")
    assert error(call(open_server, "GET", alias_path("#a:elsewhere.org"))) == (404, "M_NOT_FOUND")
    assert error(call(open_server, "DELETE", path, token=token)) == (404, "M_NOT_FOUND")
    for method in ("PUT", "DELETE"):
        unauthenticated = call(open_server, method, path, body={"room_id": "!r:localhost"})
        assert error(unauthenticated) == (401, "M_MISSING_TOKEN")


def test_room_endpoints_for_unknown_rooms(open_server: ServerProcess) -> None:
    token = register(open_server, "bob")["access_token"]
    room = "!unknown:localhost"
    assert error(call(open_server, "GET", visibility_path(room))) == (404, "M_NOT_FOUND")
    put = call(
        open_server, "PUT", visibility_path(room), token=token, body={"visibility": "public"}
    )
    assert error(put) == (404, "M_NOT_FOUND")
    assert error(call(open_server, "PUT", visibility_path(room), body={})) == (
        401,
        "M_MISSING_TOKEN",
    )
    aliases = f"/rooms/{quote(room)}/aliases"
    assert error(call(open_server, "GET", aliases, token=token)) == (403, "M_FORBIDDEN")
    assert error(call(open_server, "GET", aliases)) == (401, "M_MISSING_TOKEN")
    assert error(call(open_server, "GET", "/rooms/not-a-room/aliases", token=token)) == (
        400,
        "M_INVALID_PARAM",
    )


def test_public_rooms_input_errors(open_server: ServerProcess) -> None:
    token = register(open_server, "carol")["access_token"]
    # GET needs no token (the spec gives it no security), but one that is sent must work.
    assert public_rooms(open_server) == {"chunk": [], "total_room_count_estimate": 0}
    assert public_rooms(open_server, token, "?server=localhost&limit=0")["chunk"] == []
    assert error(call(open_server, "GET", "/publicRooms", token="nonsense")) == (
        401,
        "M_UNKNOWN_TOKEN",
    )
    for query, expected in [
        ("?limit=-1", (400, "M_INVALID_PARAM")),
        ("?limit=ten", (400, "M_INVALID_PARAM")),
        ("?since=garbage!", (400, "M_INVALID_PARAM")),
        ("?since=WyJmIiwxXQ", (400, "M_INVALID_PARAM")),  # well-formed base64, not a position
        ("?server=bad%20server", (400, "M_INVALID_PARAM")),
        ("?server=elsewhere.org", (404, "M_NOT_FOUND")),  # needs federation
    ]:
        assert error(call(open_server, "GET", "/publicRooms" + query)) == expected, query
    # POST needs a token, as the spec says.
    assert error(call(open_server, "POST", "/publicRooms", body={})) == (401, "M_MISSING_TOKEN")
    assert search(open_server, token, {})["chunk"] == []
    for body in [
        {"limit": "10"},
        {"limit": True},
        {"limit": 1.5},
        {"since": 5},
        {"filter": []},
        {"filter": {"generic_search_term": 5}},
        {"filter": {"room_types": "m.space"}},
        {"filter": {"room_types": [5]}},
        {"include_all_networks": "yes"},
        {"third_party_instance_id": 1},
    ]:
        response = call(open_server, "POST", "/publicRooms", token=token, body=body)
        assert error(response) == (400, "M_BAD_JSON"), body
    for body in [
        {"limit": -5},
        {"since": "A" * 10},
        {"include_all_networks": True, "third_party_instance_id": "irc"},
        {"filter": {"generic_search_term": "a\x00b"}},
    ]:
        response = call(open_server, "POST", "/publicRooms", token=token, body=body)
        assert error(response) == (400, "M_INVALID_PARAM"), body


# --- needing the rooms endpoints (/createRoom, /join) ------------------------------


def test_alias_lifecycle(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    mallory = register(open_server, "mallory")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat", name="Lobby")
    path = alias_path("#lobby:localhost")
    created = call(open_server, "PUT", path, token=alice, body={"room_id": room_id})
    assert (created.status, created.json()) == (200, {})
    again = call(open_server, "PUT", path, token=alice, body={"room_id": room_id})
    assert error(again) == (409, "M_UNKNOWN")
    resolved = call(open_server, "GET", path)
    assert (resolved.status, resolved.json()) == (
        200,
        {"room_id": room_id, "servers": ["localhost"]},
    )
    # Only members create aliases for a room.
    outsider = call(
        open_server, "PUT", alias_path("#mine:localhost"), token=mallory, body={"room_id": room_id}
    )
    assert error(outsider) == (403, "M_FORBIDDEN")
    # Bob joins through the alias and adds his own.
    join(open_server, bob, "#lobby:localhost")
    bobs = call(
        open_server, "PUT", alias_path("#bobs:localhost"), token=bob, body={"room_id": room_id}
    )
    assert bobs.status == 200
    aliases = call(open_server, "GET", f"/rooms/{quote(room_id)}/aliases", token=bob)
    assert aliases.json() == {"aliases": ["#bobs:localhost", "#lobby:localhost"]}
    assert error(call(open_server, "GET", f"/rooms/{quote(room_id)}/aliases", token=mallory)) == (
        403,
        "M_FORBIDDEN",
    )
    # Bob (power 0) may delete his own alias but not Alice's; Alice (100) may delete any.
    assert error(call(open_server, "DELETE", path, token=bob)) == (403, "M_FORBIDDEN")
    assert error(call(open_server, "DELETE", path, token=mallory)) == (403, "M_FORBIDDEN")
    assert call(open_server, "DELETE", alias_path("#bobs:localhost"), token=bob).status == 200
    assert call(open_server, "DELETE", path, token=alice).status == 200
    assert error(call(open_server, "GET", path)) == (404, "M_NOT_FOUND")
    assert error(call(open_server, "DELETE", path, token=alice)) == (404, "M_NOT_FOUND")


def test_server_admins_may_delete_any_alias(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    assert register_with_secret(open_server, "root", admin=True).status == 200
    root = login(open_server, "root", "correct horse")["access_token"]
    create_room(open_server, alice, preset="public_chat", room_alias_name="welcome")
    assert call(open_server, "GET", alias_path("#welcome:localhost")).status == 200
    assert call(open_server, "DELETE", alias_path("#welcome:localhost"), token=root).status == 200
    assert call(open_server, "GET", alias_path("#welcome:localhost")).status == 404


def test_publishing_a_room_and_listing_it(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(
        open_server,
        alice,
        preset="public_chat",
        name="Cheese",
        topic="All about cheese",
        room_alias_name="cheese",
    )
    assert call(open_server, "GET", visibility_path(room_id)).json() == {"visibility": "private"}
    assert public_rooms(open_server)["chunk"] == []
    # Bob joined, but lacks the power to change the canonical alias: he may not publish.
    join(open_server, bob, room_id)
    refused = call(
        open_server, "PUT", visibility_path(room_id), token=bob, body={"visibility": "public"}
    )
    assert error(refused) == (403, "M_FORBIDDEN")
    bad = call(open_server, "PUT", visibility_path(room_id), token=alice, body={"visibility": "x"})
    assert error(bad) == (400, "M_INVALID_PARAM")
    # The body's visibility defaults to public.
    assert call(open_server, "PUT", visibility_path(room_id), token=alice, body={}).status == 200
    assert call(open_server, "GET", visibility_path(room_id)).json() == {"visibility": "public"}
    listing = public_rooms(open_server)
    assert listing == {
        "chunk": [
            {
                "room_id": room_id,
                "name": "Cheese",
                "topic": "All about cheese",
                "canonical_alias": "#cheese:localhost",
                "num_joined_members": 2,
                "world_readable": False,
                "guest_can_join": False,
                "join_rule": "public",
            }
        ],
        "total_room_count_estimate": 1,
    }
    # The directory follows later changes to the room's state.
    renamed = call(
        open_server,
        "PUT",
        f"/rooms/{quote(room_id)}/state/m.room.name",
        token=alice,
        body={"name": "Fromage"},
    )
    assert renamed.status == 200
    assert public_rooms(open_server)["chunk"][0]["name"] == "Fromage"
    unpublish = call(
        open_server, "PUT", visibility_path(room_id), token=alice, body={"visibility": "private"}
    )
    assert unpublish.status == 200
    assert public_rooms(open_server)["chunk"] == []


def test_created_public_rooms_are_listed_largest_first_and_paginated(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    others = [register(open_server, name)["access_token"] for name in ("bob", "carol")]
    big = create_room(open_server, alice, visibility="public", name="Big room")
    medium = create_room(open_server, alice, visibility="public", name="Medium room")
    small = create_room(
        open_server,
        alice,
        visibility="public",
        name="A space",
        creation_content={"type": "m.space"},
    )
    create_room(open_server, alice, visibility="private", name="Hidden room")
    for token in others:
        join(open_server, token, big)
    join(open_server, others[0], medium)

    listing = public_rooms(open_server, query="?limit=2")
    assert [room["room_id"] for room in listing["chunk"]] == [big, medium]
    assert [room["num_joined_members"] for room in listing["chunk"]] == [3, 2]
    assert "prev_batch" not in listing and listing["total_room_count_estimate"] == 3
    rest = public_rooms(open_server, query="?limit=2&since=" + listing["next_batch"])
    assert [room["room_id"] for room in rest["chunk"]] == [small]
    assert rest["chunk"][0]["room_type"] == "m.space"
    assert "next_batch" not in rest
    back = public_rooms(open_server, query="?limit=2&since=" + rest["prev_batch"])
    assert [room["room_id"] for room in back["chunk"]] == [big, medium]
    # The same pages through POST.
    page = search(open_server, alice, {"limit": 2, "since": listing["next_batch"]})
    assert [room["room_id"] for room in page["chunk"]] == [small]

    found = search(open_server, alice, {"filter": {"generic_search_term": "ROOM"}})
    assert [room["room_id"] for room in found["chunk"]] == [big, medium]
    spaces = search(open_server, alice, {"filter": {"room_types": ["m.space"]}})
    assert [room["room_id"] for room in spaces["chunk"]] == [small]
    plain = search(open_server, alice, {"filter": {"room_types": [None]}})
    assert [room["room_id"] for room in plain["chunk"]] == [big, medium]
    assert search(open_server, alice, {"third_party_instance_id": "irc"})["chunk"] == []
    everything = search(open_server, alice, {"include_all_networks": True, "limit": 1000})
    assert len(everything["chunk"]) == 3
