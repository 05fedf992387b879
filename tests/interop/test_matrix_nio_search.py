"""matrix-nio, a third-party client, searching messages on the real server, on both
engines: a misspelled word and a prefix find the message, filters narrow, history
visibility holds, and a redacted message is forgotten.

nio has no search call, so ``/search`` is a raw request through its own HTTP session
(``AsyncClient.send``); logging in, rooms, sending and redacting are nio's own calls.

spec: client-server-api/modules/search.md
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import (
    AsyncClient,
    JoinResponse,
    RoomCreateResponse,
    RoomLeaveResponse,
    RoomPutStateResponse,
    RoomRedactResponse,
    RoomSendResponse,
)
from nio.api import RoomPreset

from tests.support.matrix import register, running_server
from tests.support.nio_client import logged_in, run
from tests.support.server_process import ServerProcess


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config) as process:
        yield process


async def search(client: AsyncClient, term: str, **criteria: Any) -> list[str]:
    """The bodies of the results, in the order given."""
    response = await client.send(
        "POST",
        "/_matrix/client/v3/search",
        json.dumps({"search_categories": {"room_events": {"search_term": term, **criteria}}}),
        headers={
            "Authorization": f"Bearer {client.access_token}",
            "Content-Type": "application/json",
        },
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    results = body["search_categories"]["room_events"]["results"]
    return [result["result"]["content"].get("body", "") for result in results]


async def say(client: AsyncClient, room_id: str, content: dict[str, Any]) -> str:
    sent = await client.room_send(room_id, "m.room.message", content)
    assert isinstance(sent, RoomSendResponse), sent
    event_id: str = sent.event_id
    return event_id


async def public_room(client: AsyncClient, **kwargs: Any) -> str:
    created = await client.room_create(preset=RoomPreset.public_chat, **kwargs)
    assert isinstance(created, RoomCreateResponse), created
    room_id: str = created.room_id
    return room_id


def test_nio_finds_messages_by_misspelled_words_and_prefixes(server: ServerProcess) -> None:
    alice_account = register(server, "nioalice")

    async def scenario() -> dict[str, list[str]]:
        async with logged_in(server, alice_account) as alice:
            room_id = await public_room(alice)
            await say(alice, room_id, {"msgtype": "m.text", "body": "Encryption keys rotated"})
            await say(alice, room_id, {"msgtype": "m.text", "body": "lunch message for everyone"})
            return {
                "typo": await search(alice, "messgae"),
                "prefix": await search(alice, "encrypt"),
                "both": await search(alice, "encrypt kyes"),
                "neither": await search(alice, "dinner"),
            }

    found = run(scenario())
    assert found == {
        "typo": ["lunch message for everyone"],
        "prefix": ["Encryption keys rotated"],
        "both": ["Encryption keys rotated"],
        "neither": [],
    }


def test_nio_search_respects_each_filter(server: ServerProcess) -> None:
    alice_account = register(server, "nioalice")
    bob_account = register(server, "niobob")

    async def scenario() -> dict[str, list[str]]:
        async with logged_in(server, alice_account) as alice, logged_in(server, bob_account) as bob:
            first = await public_room(alice)
            second = await public_room(alice)
            for room_id in (first, second):
                assert isinstance(await bob.join(room_id), JoinResponse)
            await say(alice, first, {"msgtype": "m.text", "body": "concert tonight"})
            await say(bob, first, {"msgtype": "m.text", "body": "concert tickets bought"})
            await say(
                bob,
                second,
                {"msgtype": "m.image", "body": "concert.jpg", "url": "mxc://localhost/x"},
            )
            await say(
                bob,
                second,
                {"msgtype": "m.audio", "body": "concert.ogg", "url": "mxc://localhost/y"},
            )

            async def sorted_search(**filter_: Any) -> list[str]:
                return sorted(await search(alice, "concert", filter=filter_))

            return {
                "rooms": await sorted_search(rooms=[first]),
                "not_rooms": await sorted_search(not_rooms=[first]),
                "senders": await sorted_search(senders=[bob.user_id]),
                "not_senders": await sorted_search(not_senders=[bob.user_id]),
                "contains_url": await sorted_search(contains_url=True),
                "types": await sorted_search(types=["m.room.name"]),
                "limit": await search(alice, "concert", filter={"limit": 1}, order_by="recent"),
                "media": await sorted_search(**{"dev.homeserver.media": ["image"]}),
                "until_ts": await sorted_search(**{"dev.homeserver.until_ts": 0}),
            }

    found = run(scenario())
    assert found == {
        "rooms": ["concert tickets bought", "concert tonight"],
        "not_rooms": ["concert.jpg", "concert.ogg"],
        "senders": ["concert tickets bought", "concert.jpg", "concert.ogg"],
        "not_senders": ["concert tonight"],
        "contains_url": ["concert.jpg", "concert.ogg"],
        "types": [],
        "limit": ["concert.ogg"],
        "media": ["concert.jpg"],
        "until_ts": [],
    }


def test_nio_search_follows_history_visibility_and_forgets_redactions(
    server: ServerProcess,
) -> None:
    alice_account = register(server, "nioalice")
    bob_account = register(server, "niobob")

    async def scenario() -> dict[str, list[str]]:
        async with logged_in(server, alice_account) as alice, logged_in(server, bob_account) as bob:
            room_id = await public_room(alice)
            joined_only = await alice.room_put_state(
                room_id, "m.room.history_visibility", {"history_visibility": "joined"}
            )
            assert isinstance(joined_only, RoomPutStateResponse), joined_only
            await say(alice, room_id, {"msgtype": "m.text", "body": "budget draft before"})
            assert isinstance(await bob.join(room_id), JoinResponse)
            await say(alice, room_id, {"msgtype": "m.text", "body": "budget draft during"})
            regret = await say(alice, room_id, {"msgtype": "m.text", "body": "budget oops"})
            while_member = await search(bob, "budgte")
            redacted = await alice.room_redact(room_id, regret, reason="typo")
            assert isinstance(redacted, RoomRedactResponse), redacted
            after_redaction = await search(bob, "budget")
            assert isinstance(await bob.room_leave(room_id), RoomLeaveResponse)
            await say(alice, room_id, {"msgtype": "m.text", "body": "budget draft after"})
            return {
                "bob_while_member": sorted(while_member),
                "bob_after_redaction": sorted(after_redaction),
                "bob_after_leaving": sorted(await search(bob, "budget")),
                "alice": sorted(await search(alice, "budget")),
            }

    found = run(scenario())
    assert found == {
        "bob_while_member": ["budget draft during", "budget oops"],
        "bob_after_redaction": ["budget draft during"],
        "bob_after_leaving": ["budget draft during"],
        "alice": ["budget draft after", "budget draft before", "budget draft during"],
    }
