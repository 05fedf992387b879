"""More ephemeral data across two servers (H9's scenarios beside test_edus.py):
presence exchanged when a user of one server joins a room of the other, and private
read receipts that never leave their server.

spec: server-server-api.md#presence, server-server-api.md#receipts,
client-server-api/_index.md#private-read-receipts
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import pytest

from tests.federation.interop.clients import (
    Conversation,
    ServerPair,
    SyncWatcher,
    User,
    create_room,
    invite,
    join,
    new_user,
    room_path,
    send_text,
    start_conversation,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-interop-edus-joins")]


def set_status(user: User, status: str) -> None:
    user.call(
        "PUT",
        f"/presence/{quote(user.user_id, safe='')}/status",
        {"presence": "online", "status_msg": status},
    )


def has_status(user_id: str, status: str) -> Any:
    return lambda body: any(
        event.get("sender") == user_id and event["content"].get("status_msg") == status
        for event in body.get("presence", {}).get("events", [])
    )


@pytest.mark.parametrize("host", ["ours", "other"])
def test_presence_set_before_a_join_is_exchanged_by_the_join(
    servers: ServerPair, host: str
) -> None:
    home, away = (servers.ours, servers.other) if host == "ours" else (servers.other, servers.ours)
    resident, joiner = new_user(home, "resident"), new_user(away, "joiner")
    resident_sync, joiner_sync = SyncWatcher(resident), SyncWatcher(joiner)
    resident_status, joiner_status = (f"status {secrets.token_hex(4)}" for _ in range(2))
    # Neither shares a room with the other server yet: nothing is sent now.
    set_status(resident, resident_status)
    set_status(joiner, joiner_status)
    room_id = create_room(resident)
    invite(resident, room_id, joiner)
    joiner_sync.wait_for_invite(room_id)
    join(joiner, room_id, [home.server_name])
    joiner_sync.wait_for(
        has_status(resident.user_id, resident_status), what=f"{resident.user_id}'s presence"
    )
    resident_sync.wait_for(
        has_status(joiner.user_id, joiner_status), what=f"{joiner.user_id}'s presence"
    )


@pytest.fixture(scope="module")
def conversation(servers: ServerPair) -> Conversation:
    return start_conversation(servers.ours, servers.other)


def receipts_in(body: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return [
        event["content"]
        for event in room.get("ephemeral", {}).get("events", [])
        if event["type"] == "m.receipt"
    ]


@pytest.mark.parametrize("reader_role", ["creator", "joiner"])
def test_private_read_receipts_never_reach_the_other_server(
    conversation: Conversation, reader_role: str
) -> None:
    room_id = conversation.room_id
    reader = conversation.creator if reader_role == "creator" else conversation.joiner
    writer, writer_sync = conversation.other_than(reader)
    private_target = send_text(writer, room_id, "read privately")
    public_target = send_text(writer, room_id, "then publicly")
    conversation.watcher_of(reader).wait_for_events(room_id, [private_target, public_target])
    reader.call("POST", room_path(room_id, "receipt", "m.read.private", private_target), {})
    reader.call("POST", room_path(room_id, "receipt", "m.read", public_target), {})
    seen: list[dict[str, Any]] = []

    def public_receipt(body: dict[str, Any]) -> bool:
        contents = receipts_in(body, room_id)
        seen.extend(contents)
        return any(
            reader.user_id in content.get(public_target, {}).get("m.read", {})
            for content in contents
        )

    writer_sync.wait_for(public_receipt, what=f"{reader.user_id}'s public receipt")
    for content in seen:
        assert reader.user_id not in content.get(private_target, {}).get("m.read.private", {})
        assert reader.user_id not in content.get(private_target, {}).get("m.read", {})
