"""Typing, read receipts and presence between two of our servers, both ways, and the
EDUs a server must ignore: those claiming another server's user, and typing in a
room the user is not in.

Each check of "ignored" sends the bad EDU first and a good one after it in the same
transaction (EDUs are applied in order), then waits for the good one: by then the bad
one has been handled, and every response read on the way is checked for it.

spec: server-server-api.md#typing-notifications, #receipts, #presence, #edus
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.federation.interop.clients import (
    Conversation,
    ServerPair,
    User,
    acting,
    has_event_id,
    room_path,
    send_text,
    start_conversation,
)
from tests.support.federation import FederatedServer, federation_request

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-edus")]

BOTH_WAYS = pytest.mark.parametrize("actor", ["creator", "joiner"])


@pytest.fixture(scope="module")
def conversation(servers: ServerPair) -> Conversation:
    """``creator`` on ``ours``, ``joiner`` on ``other``, both joined to one room."""
    return start_conversation(servers.ours, servers.other)


def ephemeral(body: dict[str, Any], room_id: str, event_type: str) -> list[dict[str, Any]]:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == event_type]


def typists(body: dict[str, Any], room_id: str) -> set[str] | None:
    """The typing users of the room's newest ``m.typing`` in the response, if any."""
    events = ephemeral(body, room_id, "m.typing")
    return set(events[-1]["content"]["user_ids"]) if events else None


def presence_of(body: dict[str, Any], user_id: str) -> dict[str, Any] | None:
    found = [
        event["content"]
        for event in body.get("presence", {}).get("events", [])
        if event.get("sender") == user_id
    ]
    return found[-1] if found else None


def send_edus(servers: ServerPair, edus: list[dict[str, Any]]) -> None:
    """One transaction of ``edus`` from ``other`` to ``ours``, signed by ``other``."""
    origin: FederatedServer = servers.other
    txn_id = f"edus{time.monotonic_ns()}"
    response = federation_request(
        servers.ca,
        servers.ours,
        "PUT",
        f"/_matrix/federation/v1/send/{txn_id}",
        body={
            "origin": origin.server_name,
            "origin_server_ts": int(time.time() * 1000),
            "pdus": [],
            "edus": edus,
        },
        origin=origin.server_name,
        signing_key=origin.signing_key(),
    )
    assert response.status == 200, (response.status, response.body)


def set_typing(user: User, room_id: str, typing: bool) -> None:
    user.call(
        "PUT", room_path(room_id, "typing", user.user_id), {"typing": typing, "timeout": 30_000}
    )


@BOTH_WAYS
def test_typing_is_seen_on_the_other_server(conversation: Conversation, actor: str) -> None:
    room_id = conversation.room_id
    typist, watcher = acting(conversation, actor)
    set_typing(typist, room_id, True)
    watcher.wait_for(
        lambda body: typist.user_id in (typists(body, room_id) or ()),
        what=f"{typist.user_id} typing",
    )
    set_typing(typist, room_id, False)
    watcher.wait_for(
        lambda body: (seen := typists(body, room_id)) is not None and typist.user_id not in seen,
        what=f"{typist.user_id} no longer typing",
    )


@BOTH_WAYS
def test_a_typing_time_out_reaches_the_other_server(conversation: Conversation, actor: str) -> None:
    room_id = conversation.room_id
    typist, watcher = acting(conversation, actor)
    typist.call(
        "PUT", room_path(room_id, "typing", typist.user_id), {"typing": True, "timeout": 1_000}
    )
    watcher.wait_for(
        lambda body: typist.user_id in (typists(body, room_id) or ()),
        what=f"{typist.user_id} typing",
    )
    # No stop is sent by the client: the typist's server says so when the time-out
    # runs out (the other server alone would show them for a minute).
    watcher.wait_for(
        lambda body: (seen := typists(body, room_id)) is not None and typist.user_id not in seen,
        within=20,
        what=f"{typist.user_id}'s typing timing out",
    )


@BOTH_WAYS
def test_read_receipts_are_seen_on_the_other_server(conversation: Conversation, actor: str) -> None:
    room_id = conversation.room_id
    reader, writer_sync = acting(conversation, actor)
    event_id = send_text(writer_sync.user, room_id, "read me")
    conversation.watcher_of(reader).wait_for_event(room_id, has_event_id(event_id))
    reader.call("POST", room_path(room_id, "receipt", "m.read", event_id), {})
    receipt = writer_sync.wait_for(
        lambda body: next(
            (
                event["content"][event_id]["m.read"][reader.user_id]
                for event in ephemeral(body, room_id, "m.receipt")
                if reader.user_id in event["content"].get(event_id, {}).get("m.read", {})
            ),
            None,
        ),
        what=f"{reader.user_id}'s read receipt",
    )
    assert isinstance(receipt["ts"], int)


def test_private_read_receipts_stay_on_their_server(conversation: Conversation) -> None:
    room_id = conversation.room_id
    reader, reader_sync = conversation.joiner, conversation.joiner_sync
    creator, creator_sync = conversation.creator, conversation.creator_sync
    private_target = send_text(creator, room_id, "read me privately")
    public_target = send_text(creator, room_id, "then publicly")
    reader_sync.wait_for_events(room_id, [private_target, public_target])
    reader.call("POST", room_path(room_id, "receipt", "m.read.private", private_target), {})
    reader.call("POST", room_path(room_id, "receipt", "m.read", public_target), {})
    seen: list[dict[str, Any]] = []

    def public_receipt(body: dict[str, Any]) -> bool:
        events = ephemeral(body, room_id, "m.receipt")
        seen.extend(events)
        return any(
            reader.user_id in event["content"].get(public_target, {}).get("m.read", {})
            for event in events
        )

    creator_sync.wait_for(public_receipt, what="the public receipt")
    assert not any(private_target in event["content"] for event in seen)


@BOTH_WAYS
def test_presence_is_seen_on_the_other_server(conversation: Conversation, actor: str) -> None:
    user, watcher = acting(conversation, actor)
    status = f"status {secrets.token_hex(4)}"
    user.call(
        "PUT",
        f"/presence/{quote(user.user_id, safe='')}/status",
        {"presence": "online", "status_msg": status},
    )
    content = watcher.wait_for(
        lambda body: (
            (p := presence_of(body, user.user_id)) is not None
            and p.get("status_msg") == status
            and p
        ),
        what=f"{user.user_id}'s presence",
    )
    assert content["presence"] == "online"
    assert isinstance(content["last_active_ago"], int)


def watch_until(
    conversation: Conversation, check: Callable[[dict[str, Any]], bool], what: str
) -> list[dict[str, Any]]:
    """The creator's sync responses up to the first for which ``check`` holds."""
    seen: list[dict[str, Any]] = []

    def record(body: dict[str, Any]) -> bool:
        seen.append(body)
        return check(body)

    conversation.creator_sync.wait_for(record, what=what)
    return seen


def test_typing_claiming_another_servers_user_is_ignored(
    servers: ServerPair, conversation: Conversation
) -> None:
    room_id = conversation.room_id
    creator, joiner = conversation.creator.user_id, conversation.joiner.user_id
    conversation.creator_sync.catch_up()
    send_edus(
        servers,
        [
            # ``other`` speaks for ``ours``' user, who is joined to the room.
            {
                "edu_type": "m.typing",
                "content": {"room_id": room_id, "user_id": creator, "typing": True},
            },
            {
                "edu_type": "m.typing",
                "content": {"room_id": room_id, "user_id": joiner, "typing": True},
            },
        ],
    )
    seen = watch_until(
        conversation, lambda body: joiner in (typists(body, room_id) or ()), "the joiner typing"
    )
    assert not any(creator in (typists(body, room_id) or ()) for body in seen)
    send_edus(
        servers,
        [
            {
                "edu_type": "m.typing",
                "content": {"room_id": room_id, "user_id": joiner, "typing": False},
            }
        ],
    )


def test_typing_in_a_room_the_user_is_not_in_is_ignored(
    servers: ServerPair, conversation: Conversation
) -> None:
    room_id = conversation.room_id
    joiner = conversation.joiner.user_id
    stranger = servers.other.user_id(f"stranger{secrets.token_hex(3)}")
    conversation.creator_sync.catch_up()
    send_edus(
        servers,
        [
            {
                "edu_type": "m.typing",
                "content": {"room_id": room_id, "user_id": stranger, "typing": True},
            },
            {
                "edu_type": "m.typing",
                "content": {"room_id": room_id, "user_id": joiner, "typing": True},
            },
        ],
    )
    seen = watch_until(
        conversation, lambda body: joiner in (typists(body, room_id) or ()), "the joiner typing"
    )
    assert not any(stranger in (typists(body, room_id) or ()) for body in seen)
    send_edus(
        servers,
        [
            {
                "edu_type": "m.typing",
                "content": {"room_id": room_id, "user_id": joiner, "typing": False},
            }
        ],
    )


def test_receipts_and_presence_claiming_another_servers_user_are_ignored(
    servers: ServerPair, conversation: Conversation
) -> None:
    room_id = conversation.room_id
    creator, joiner = conversation.creator.user_id, conversation.joiner.user_id
    # The joiner's message: nothing but a forgery gives the creator a receipt on it.
    event_id = send_text(conversation.joiner, room_id, "forged receipts target")
    conversation.creator_sync.wait_for_event(room_id, has_event_id(event_id))
    forged, real = f"forged {secrets.token_hex(3)}", f"real {secrets.token_hex(3)}"

    receipt = {"event_ids": [event_id], "data": {"ts": 1}}

    send_edus(
        servers,
        [
            {"edu_type": "m.receipt", "content": {room_id: {"m.read": {creator: receipt}}}},
            {
                "edu_type": "m.presence",
                "content": {
                    "push": [
                        {
                            "user_id": creator,
                            "presence": "online",
                            "status_msg": forged,
                            "last_active_ago": 0,
                        }
                    ]
                },
            },
            {"edu_type": "m.receipt", "content": {room_id: {"m.read": {joiner: receipt}}}},
            {
                "edu_type": "m.presence",
                "content": {
                    "push": [
                        {
                            "user_id": joiner,
                            "presence": "online",
                            "status_msg": real,
                            "last_active_ago": 0,
                        }
                    ]
                },
            },
        ],
    )
    seen: list[dict[str, Any]] = []
    got = {"receipt": False, "presence": False}

    def both(body: dict[str, Any]) -> bool:
        seen.append(body)
        for event in ephemeral(body, room_id, "m.receipt"):
            if joiner in event["content"].get(event_id, {}).get("m.read", {}):
                got["receipt"] = True
        if (presence_of(body, joiner) or {}).get("status_msg") == real:
            got["presence"] = True
        return all(got.values())

    conversation.creator_sync.wait_for(both, what="the joiner's receipt and presence")
    for body in seen:
        for event in ephemeral(body, room_id, "m.receipt"):
            assert creator not in event["content"].get(event_id, {}).get("m.read", {})
        assert (presence_of(body, creator) or {}).get("status_msg") != forged
    status = conversation.creator.call("GET", f"/presence/{quote(creator, safe='')}/status")
    assert status.get("status_msg") != forged
