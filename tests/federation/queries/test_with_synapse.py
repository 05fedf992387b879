"""Queries and media between our server and Synapse, each way: profiles, aliases
(and joining by one), room directories, spaces and media (Synapse parses our
multipart answers and we parse its).  Synapse runs on SQLite, ours too.

spec: server-server-api.md#querying-for-information, #published-room-directory,
#spaces, #content-repository
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import quote

import attrs
import pytest

from tests.federation.interop.clients import User, create_room, join, new_user, room_path
from tests.federation.queries.test_two_servers import CLIENT_V1, upload
from tests.media.harness import png
from tests.support.federation import (
    FederatedServer,
    TestCA,
    database_section,
    federated_server,
)
from tests.support.matrix import auth
from tests.support.synapse_server import synapse_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-queries-synapse")]


@attrs.frozen
class Servers:
    ours: FederatedServer
    synapse: FederatedServer


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    folder = tmp_path_factory.mktemp("queries-synapse")
    ca = TestCA.create(folder / "ca")
    with ExitStack() as stack:
        database = stack.enter_context(database_section("sqlite", folder / "ours-db"))
        ours = stack.enter_context(
            federated_server(
                folder, database, ca, name="ours", allow_public_rooms_over_federation=True
            )
        )
        yield Servers(ours, stack.enter_context(synapse_server(folder, ca)))


def directions(servers: Servers) -> list[tuple[FederatedServer, FederatedServer]]:
    """(where the thing lives, who asks for it)."""
    return [(servers.ours, servers.synapse), (servers.synapse, servers.ours)]


def test_profiles_are_read_across_both_ways(servers: Servers) -> None:
    for home, away in directions(servers):
        owner, reader = new_user(home, "owner"), new_user(away, "reader")
        owner.call("PUT", f"/profile/{quote(owner.user_id)}/displayname", {"displayname": "Ow"})
        assert reader.call("GET", f"/profile/{quote(owner.user_id)}")["displayname"] == "Ow"


def test_aliases_resolve_and_join_both_ways(servers: Servers) -> None:
    for home, away in directions(servers):
        owner, joiner = new_user(home, "owner"), new_user(away, "joiner")
        localpart = f"a{owner.user_id[1:].split(':')[0]}"
        room_id = create_room(owner, preset="public_chat", room_alias_name=localpart)
        alias = f"#{localpart}:{home.server_name}"
        resolved = joiner.call("GET", f"/directory/room/{quote(alias)}")
        assert resolved["room_id"] == room_id
        assert joiner.call("POST", f"/join/{quote(alias)}", {})["room_id"] == room_id


def test_room_directories_are_listed_both_ways(servers: Servers) -> None:
    owner, reader = new_user(servers.ours, "owner"), new_user(servers.synapse, "reader")
    name = f"Listed {owner.user_id}"
    room_id = create_room(owner, preset="public_chat", name=name, visibility="public")
    listed = reader.call("GET", f"/publicRooms?server={quote(servers.ours.server_name)}")
    assert {room["room_id"]: room.get("name") for room in listed["chunk"]}[room_id] == name
    # Synapse lets only its admins publish rooms by default: its (empty) list is
    # still asked for and answered.
    ours = new_user(servers.ours, "reader")
    remote = ours.call("GET", f"/publicRooms?server={quote(servers.synapse.server_name)}")
    assert remote["chunk"] == []


def test_a_space_of_the_other_server_lists_its_children_both_ways(servers: Servers) -> None:
    for home, away in directions(servers):
        owner, reader = new_user(home, "owner"), new_user(away, "reader")
        space_id = create_room(owner, preset="public_chat", creation_content={"type": "m.space"})
        child_id = create_room(owner, preset="public_chat", name="Child")
        owner.call(
            "PUT",
            room_path(space_id, "state", "m.space.child", child_id),
            {"via": [home.server_name]},
        )
        join(reader, space_id, [home.server_name])
        body = reader.call("GET", room_path(space_id, "hierarchy"), api=CLIENT_V1)
        assert {room["room_id"] for room in body["rooms"]} == {space_id, child_id}


def download(user: User, server_name: str, media_id: str, kind: str, query: str = "") -> bytes:
    response = user.server.process.request(
        "GET",
        f"{CLIENT_V1}/media/{kind}/{quote(server_name)}/{media_id}{query}",
        headers=auth(user.access_token),
        timeout=60,
    )
    assert response.status == 200, (kind, response.status, response.body[:300])
    return response.body


def test_media_is_downloaded_across_both_ways(servers: Servers) -> None:
    picture = png(64, 48)
    for home, away in directions(servers):
        owner, reader = new_user(home, "owner"), new_user(away, "reader")
        content_uri = upload(owner, picture, "image/png", "pic.png")
        server_name, media_id = content_uri.removeprefix("mxc://").split("/")
        assert download(reader, server_name, media_id, "download") == picture
        if away is servers.ours:  # our thumbnails are made from the fetched original
            thumbnail = download(reader, server_name, media_id, "thumbnail", "?width=16&height=16")
            assert thumbnail[:8] in (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00\x10JF")
