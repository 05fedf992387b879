"""Queries and media between two of our servers on loopback over TLS: a remote
user's profile, a remote alias (and joining by it), the other server's room
directory, a space on the other server, media uploaded on one server downloaded
(and thumbnailed) by a user of the other, a large file among them, and OpenID
tokens checked by a third party.  Both engines; one pair of servers per engine,
shared by the module.

spec: server-server-api.md#querying-for-information, #published-room-directory,
#spaces, #openid, #content-repository
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import quote

import attrs
import pytest

from federation.queries.multipart import boundary_of, parse_multipart
from tests.federation.interop.clients import User, create_room, join, new_user, room_path
from tests.media.harness import png
from tests.support.federation import (
    FederatedServer,
    TestCA,
    database_section,
    federated_server,
    federation_request,
)
from tests.support.matrix import auth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-queries")]

CLIENT_V1 = "/_matrix/client/v1"
CLIENT_V3 = "/_matrix/client/v3"


@attrs.frozen
class Pair:
    ca: TestCA
    #: Shares its room directory over federation.
    home: FederatedServer
    #: Does not (the default).
    away: FederatedServer


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    engine = request.param
    folder = tmp_path_factory.mktemp(f"queries-{engine}")
    ca = TestCA.create(folder / "ca")
    with ExitStack() as stack:

        def start(name: str, **overrides: Any) -> FederatedServer:
            database = stack.enter_context(database_section(engine, folder / f"{name}-db"))
            return stack.enter_context(
                federated_server(folder, database, ca, name=name, **overrides)
            )

        home = start("home", allow_public_rooms_over_federation=True)
        yield Pair(ca, home, start("away"))


def signed_get(pair: Pair, destination: FederatedServer, path: str) -> Any:
    """A GET on ``destination``'s federation API, signed as the other server."""
    origin = pair.away if destination is pair.home else pair.home
    return federation_request(
        pair.ca,
        destination,
        "GET",
        path,
        origin=origin.server_name,
        signing_key=origin.signing_key(),
    )


# --- profiles ----------------------------------------------------------------------


def test_a_remote_users_profile_comes_from_their_server(pair: Pair) -> None:
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    alice.call("PUT", f"/profile/{quote(alice.user_id)}/displayname", {"displayname": "Alice A"})
    profile = bob.call("GET", f"/profile/{quote(alice.user_id)}")
    assert profile["displayname"] == "Alice A"
    field = bob.call("GET", f"/profile/{quote(alice.user_id)}/displayname")
    assert field == {"displayname": "Alice A"}


def test_an_unknown_remote_user_has_no_profile(pair: Pair) -> None:
    bob = new_user(pair.away, "bob")
    nobody = f"@nobody-here:{pair.home.server_name}"
    response = pair.away.process.request(
        "GET", f"{CLIENT_V3}/profile/{quote(nobody)}", headers=auth(bob.access_token)
    )
    assert response.status == 404, response.body
    assert response.json()["errcode"] == "M_NOT_FOUND"


def test_the_profile_query_answers_one_field_and_only_for_local_users(pair: Pair) -> None:
    alice = new_user(pair.home, "alice")
    alice.call("PUT", f"/profile/{quote(alice.user_id)}/displayname", {"displayname": "Al"})
    path = "/_matrix/federation/v1/query/profile?user_id=" + quote(alice.user_id)
    answer = signed_get(pair, pair.home, path + "&field=displayname")
    assert answer.status == 200, answer.body
    assert answer.json() == {"displayname": "Al"}
    foreign = "/_matrix/federation/v1/query/profile?user_id=" + quote("@x:elsewhere.test")
    assert signed_get(pair, pair.home, foreign).status == 400
    unsigned = federation_request(pair.ca, pair.home, "GET", path)
    assert unsigned.status == 401


def test_an_unknown_profile_field_is_answered_without_it_not_refused(pair: Pair) -> None:
    alice = new_user(pair.home, "alice")
    alice.call("PUT", f"/profile/{quote(alice.user_id)}/displayname", {"displayname": "Al"})
    path = "/_matrix/federation/v1/query/profile?user_id=" + quote(alice.user_id)
    for field in ("m.tz", "org.example.custom"):
        answer = signed_get(pair, pair.home, path + "&field=" + quote(field))
        assert answer.status == 200, answer.body
        assert answer.json() == {}


# --- aliases and the room directory -------------------------------------------------


def test_a_remote_alias_resolves_and_a_user_joins_by_it(pair: Pair) -> None:
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    localpart = f"lobby{alice.user_id[1:].split(':')[0]}"
    room_id = create_room(alice, preset="public_chat", room_alias_name=localpart)
    alias = f"#{localpart}:{pair.home.server_name}"
    resolved = bob.call("GET", f"/directory/room/{quote(alias)}")
    assert resolved["room_id"] == room_id
    assert pair.home.server_name in resolved["servers"]
    joined = bob.call("POST", f"/join/{quote(alias)}", {})
    assert joined["room_id"] == room_id
    members = alice.call("GET", room_path(room_id, "joined_members"))["joined"]
    assert bob.user_id in members


def test_an_unknown_remote_alias_is_not_found(pair: Pair) -> None:
    bob = new_user(pair.away, "bob")
    alias = f"#no-such-room:{pair.home.server_name}"
    response = pair.away.process.request(
        "GET", f"{CLIENT_V3}/directory/room/{quote(alias)}", headers=auth(bob.access_token)
    )
    assert response.status == 404, response.body


def test_the_other_servers_published_rooms_are_listed(pair: Pair) -> None:
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    name = f"Published {alice.user_id}"
    room_id = create_room(alice, preset="public_chat", name=name, visibility="public")
    listed = bob.call("GET", f"/publicRooms?server={quote(pair.home.server_name)}&limit=500")
    entry = next(room for room in listed["chunk"] if room["room_id"] == room_id)
    assert entry["name"] == name
    assert entry["num_joined_members"] == 1
    searched = bob.call(
        "POST",
        f"/publicRooms?server={quote(pair.home.server_name)}",
        {"filter": {"generic_search_term": alice.user_id}},
    )
    assert [room["room_id"] for room in searched["chunk"]] == [room_id]


def test_rooms_that_do_not_federate_are_not_listed_to_other_servers(pair: Pair) -> None:
    alice = new_user(pair.home, "alice")
    local_only = create_room(
        alice,
        preset="public_chat",
        visibility="public",
        name=f"Local only {alice.user_id}",
        creation_content={"m.federate": False},
    )
    shared = create_room(
        alice, preset="public_chat", visibility="public", name=f"Shared {alice.user_id}"
    )
    local = alice.call("GET", "/publicRooms?limit=500")
    assert {local_only, shared} <= {room["room_id"] for room in local["chunk"]}
    answer = signed_get(pair, pair.home, "/_matrix/federation/v1/publicRooms?limit=500")
    assert answer.status == 200, answer.body
    listed = {room["room_id"] for room in answer.json()["chunk"]}
    assert shared in listed
    assert local_only not in listed
    # The count leaves them out too (one page of 500 holds this module's rooms).
    assert answer.json()["total_room_count_estimate"] == len(listed)
    assert local["total_room_count_estimate"] > len(listed)


def test_a_server_that_does_not_share_its_directory_refuses(pair: Pair) -> None:
    answer = signed_get(pair, pair.away, "/_matrix/federation/v1/publicRooms")
    assert answer.status == 403
    alice = new_user(pair.home, "alice")
    response = pair.home.process.request(
        "GET",
        f"{CLIENT_V3}/publicRooms?server={quote(pair.away.server_name)}",
        headers=auth(alice.access_token),
    )
    assert response.status == 502, response.body


# --- spaces --------------------------------------------------------------------------


def test_a_space_on_the_other_server_is_walked_through_federation(pair: Pair) -> None:
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    space_id = create_room(
        alice, preset="public_chat", name="Space", creation_content={"type": "m.space"}
    )
    child_id = create_room(alice, preset="public_chat", name="Child")
    hidden_id = create_room(alice, preset="private_chat", name="Hidden")
    for child in (child_id, hidden_id):
        alice.call(
            "PUT",
            room_path(space_id, "state", "m.space.child", child),
            {"via": [pair.home.server_name]},
        )
    # Bob's server learns the space by his joining it; its children only through
    # the hierarchy endpoint of the server in their ``via``.
    join(bob, space_id, [pair.home.server_name])
    body = bob.call("GET", room_path(space_id, "hierarchy"), api=CLIENT_V1)
    rooms = {room["room_id"]: room for room in body["rooms"]}
    assert set(rooms) == {space_id, child_id}
    assert rooms[space_id]["room_type"] == "m.space"
    assert rooms[child_id]["name"] == "Child"
    assert {child["state_key"] for child in rooms[space_id]["children_state"]} == {
        child_id,
        hidden_id,
    }


def test_the_hierarchy_endpoint_hides_private_rooms_from_other_servers(pair: Pair) -> None:
    alice = new_user(pair.home, "alice")
    private_id = create_room(alice, preset="private_chat")
    answer = signed_get(pair, pair.home, f"/_matrix/federation/v1/hierarchy/{quote(private_id)}")
    assert answer.status == 404, answer.body


# --- media ---------------------------------------------------------------------------


def upload(user: User, data: bytes, content_type: str, name: str) -> str:
    response = user.server.process.request(
        "POST",
        f"/_matrix/media/v3/upload?filename={quote(name)}",
        body=data,
        headers={**auth(user.access_token), "Content-Type": content_type},
    )
    assert response.status == 200, response.body
    content_uri: str = response.json()["content_uri"]
    return content_uri


def test_media_uploaded_on_one_server_is_downloaded_by_a_user_of_the_other(pair: Pair) -> None:
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    picture = png(120, 90)
    content_uri = upload(alice, picture, "image/png", "red.png")
    server_name, media_id = content_uri.removeprefix("mxc://").split("/")
    assert server_name == pair.home.server_name
    path = f"{CLIENT_V1}/media/download/{quote(server_name)}/{media_id}"
    downloaded = pair.away.process.request("GET", path, headers=auth(bob.access_token), timeout=60)
    assert downloaded.status == 200, downloaded.body
    assert downloaded.body == picture
    assert downloaded.headers["content-type"] == "image/png"
    assert "red.png" in downloaded.headers.get("content-disposition", "")
    thumbnail = pair.away.process.request(
        "GET",
        f"{CLIENT_V1}/media/thumbnail/{quote(server_name)}/{media_id}?width=32&height=32",
        headers=auth(bob.access_token),
        timeout=60,
    )
    assert thumbnail.status == 200, thumbnail.body
    assert thumbnail.headers["content-type"].startswith("image/")
    assert thumbnail.body != picture


def test_a_large_file_arrives_whole_from_the_other_server(pair: Pair) -> None:
    """20 MiB, streamed from the multipart answer to disk as it arrives (never held
    whole): every byte arrives, in order."""
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    # Not repetitive, so a lost, doubled or reordered piece changes the hash.
    data = b"".join(hashlib.sha256(n.to_bytes(4, "big")).digest() for n in range(655_360))
    assert len(data) == 20 * 1024 * 1024
    content_uri = upload(alice, data, "application/octet-stream", "big.bin")
    server_name, media_id = content_uri.removeprefix("mxc://").split("/")
    downloaded = pair.away.process.request(
        "GET",
        f"{CLIENT_V1}/media/download/{quote(server_name)}/{media_id}",
        headers=auth(bob.access_token),
        timeout=120,
    )
    assert downloaded.status == 200, downloaded.body[:200]
    assert hashlib.sha256(downloaded.body).hexdigest() == hashlib.sha256(data).hexdigest()
    assert "big.bin" in downloaded.headers.get("content-disposition", "")


def test_the_federation_media_endpoints_answer_multipart(pair: Pair) -> None:
    alice = new_user(pair.home, "alice")
    data = b"plain bytes\r\n--not-a-boundary\r\n" * 100
    media_id = upload(alice, data, "text/plain", "notes.txt").rsplit("/", 1)[1]
    answer = signed_get(pair, pair.home, f"/_matrix/federation/v1/media/download/{media_id}")
    assert answer.status == 200, answer.body
    parts = parse_multipart(answer.body, boundary_of(answer.headers["content-type"]), max_parts=3)
    assert len(parts) == 2
    assert parts[0].headers["content-type"] == "application/json"
    assert json.loads(parts[0].body) == {}
    assert parts[1].body == data
    assert parts[1].headers["content-type"].startswith("text/plain")
    picture_id = upload(alice, png(), "image/png", "p.png").rsplit("/", 1)[1]
    thumbnail = signed_get(
        pair,
        pair.home,
        f"/_matrix/federation/v1/media/thumbnail/{picture_id}?width=16&height=16&method=crop",
    )
    assert thumbnail.status == 200, thumbnail.body
    boundary = boundary_of(thumbnail.headers["content-type"])
    image = parse_multipart(thumbnail.body, boundary, max_parts=3)[1]
    assert image.headers["content-type"].startswith("image/")
    unsigned = federation_request(
        pair.ca, pair.home, "GET", f"/_matrix/federation/v1/media/download/{media_id}"
    )
    assert unsigned.status == 401
    missing = signed_get(pair, pair.home, "/_matrix/federation/v1/media/download/nonexistent")
    assert missing.status == 404


def test_missing_remote_media_is_not_found(pair: Pair) -> None:
    bob = new_user(pair.away, "bob")
    response = pair.away.process.request(
        "GET",
        f"{CLIENT_V1}/media/download/{quote(pair.home.server_name)}/doesNotExist",
        headers=auth(bob.access_token),
        timeout=60,
    )
    assert response.status == 404, response.body


# --- OpenID ------------------------------------------------------------------------


def test_an_openid_token_names_its_user_to_a_third_party(pair: Pair) -> None:
    alice, bob = new_user(pair.home, "alice"), new_user(pair.home, "bob")
    token = alice.call("POST", f"/user/{quote(alice.user_id)}/openid/request_token", {})
    assert token["token_type"] == "Bearer"
    assert token["matrix_server_name"] == pair.home.server_name
    assert token["expires_in"] > 0
    # The third party is not a homeserver: no X-Matrix signature.
    path = "/_matrix/federation/v1/openid/userinfo?access_token="
    answer = federation_request(pair.ca, pair.home, "GET", path + quote(token["access_token"]))
    assert answer.status == 200, answer.body
    assert answer.json() == {"sub": alice.user_id}
    wrong = federation_request(pair.ca, pair.home, "GET", path + "not-a-token")
    assert wrong.status == 401
    assert wrong.json()["errcode"] == "M_UNKNOWN_TOKEN"
    refused = pair.home.process.request(
        "POST",
        f"{CLIENT_V3}/user/{quote(alice.user_id)}/openid/request_token",
        json_body={},
        headers=auth(bob.access_token),
    )
    assert refused.status == 403
