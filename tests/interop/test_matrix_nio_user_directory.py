"""matrix-nio, a third-party client, searching the user directory of the real server.

nio has no user directory call, so the search is a raw request through its own HTTP
session (``AsyncClient.send``), with nio's own calls for everything around it.

spec: client-server-api/_index.md#post_matrixclientv3user_directorysearch
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, JoinResponse, ProfileSetDisplayNameResponse, RoomCreateResponse
from nio.api import RoomPreset

from tests.support.matrix import register, running_server
from tests.support.nio_client import logged_in, poll, run
from tests.support.server_process import ServerProcess


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config) as process:
        yield process


async def directory_search(client: AsyncClient, term: str) -> dict[str, Any]:
    response = await client.send(
        "POST",
        "/_matrix/client/v3/user_directory/search",
        json.dumps({"search_term": term, "limit": 5}),
        headers={
            "Authorization": f"Bearer {client.access_token}",
            "Content-Type": "application/json",
        },
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def test_nio_finds_a_room_mate_by_part_of_their_name(server: ServerProcess) -> None:
    alice_account = register(server, "nioalice")
    bob_account = register(server, "niobob")

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with logged_in(server, alice_account) as alice, logged_in(server, bob_account) as bob:
            named = await bob.set_displayname("Bartholomew Nio")
            assert isinstance(named, ProfileSetDisplayNameResponse), named
            before = await directory_search(alice, "tholom")
            room = await alice.room_create(preset=RoomPreset.public_chat)
            assert isinstance(room, RoomCreateResponse), room
            assert isinstance(await bob.join(room.room_id), JoinResponse)

            async def bob_found() -> dict[str, Any] | None:
                result = await directory_search(alice, "tholom")
                return result if result["results"] else None

            return before, await poll(bob_found)

    before, after = run(scenario())
    assert before == {"results": [], "limited": False}
    assert after == {
        "results": [{"user_id": bob_account["user_id"], "display_name": "Bartholomew Nio"}],
        "limited": False,
    }
