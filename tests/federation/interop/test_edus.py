"""Ephemeral data across two servers: typing, read receipts and presence, both ways
(``actor``: the user of the room's creating server, or the joiner).

spec: server-server-api.md#typing-notifications, server-server-api.md#receipts,
server-server-api.md#presence
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import pytest

from tests.federation.interop.clients import (
    Conversation,
    ServerPair,
    acting,
    has_event_id,
    room_path,
    send_text,
    start_conversation,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-interop-edus")]


@pytest.fixture(scope="module")
def conversation(servers: ServerPair) -> Conversation:
    return start_conversation(servers.ours, servers.other)


def ephemeral_events(body: dict[str, Any], room_id: str, event_type: str) -> list[dict[str, Any]]:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return [
        event
        for event in room.get("ephemeral", {}).get("events", [])
        if event["type"] == event_type
    ]


#: Who acts: the user of the server that created the room, or the one who joined.
BOTH_WAYS = pytest.mark.parametrize("actor", ["creator", "joiner"])


@BOTH_WAYS
def test_typing_notifications_reach_the_other_server(
    conversation: Conversation, actor: str
) -> None:
    room_id = conversation.room_id
    typist, watcher = acting(conversation, actor)
    typist.call(
        "PUT", room_path(room_id, "typing", typist.user_id), {"typing": True, "timeout": 30_000}
    )
    watcher.wait_for(
        lambda body: any(
            typist.user_id in event["content"]["user_ids"]
            for event in ephemeral_events(body, room_id, "m.typing")
        ),
        what=f"{typist.user_id} typing",
    )
    typist.call("PUT", room_path(room_id, "typing", typist.user_id), {"typing": False})
    watcher.wait_for(
        lambda body: any(
            typist.user_id not in event["content"]["user_ids"]
            for event in ephemeral_events(body, room_id, "m.typing")
        ),
        what=f"{typist.user_id} stopping typing",
    )


@BOTH_WAYS
def test_read_receipts_reach_the_other_server(conversation: Conversation, actor: str) -> None:
    room_id = conversation.room_id
    reader, writer_sync = acting(conversation, actor)
    writer = writer_sync.user
    event_id = send_text(writer, room_id, f"read me, {reader.user_id}")
    conversation.watcher_of(reader).wait_for_event(
        room_id, has_event_id(event_id), what="the message to read"
    )
    reader.call("POST", room_path(room_id, "receipt", "m.read", event_id), {})
    writer_sync.wait_for(
        lambda body: any(
            reader.user_id in event["content"].get(event_id, {}).get("m.read", {})
            for event in ephemeral_events(body, room_id, "m.receipt")
        ),
        what=f"{reader.user_id}'s read receipt",
    )


@BOTH_WAYS
def test_presence_reaches_the_other_server(conversation: Conversation, actor: str) -> None:
    user, watcher = acting(conversation, actor)
    status = f"status {secrets.token_hex(4)}"
    user.call(
        "PUT",
        f"/presence/{quote(user.user_id, safe='')}/status",
        {"presence": "online", "status_msg": status},
    )
    watcher.wait_for(
        lambda body: any(
            event.get("sender") == user.user_id
            and event["content"].get("status_msg") == status
            and event["content"].get("presence") == "online"
            for event in body.get("presence", {}).get("events", [])
        ),
        what=f"{user.user_id}'s presence",
    )
