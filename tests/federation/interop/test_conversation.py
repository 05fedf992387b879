"""A conversation across two servers: invite and join, messages, edits, redactions,
and the history a joiner backfills.

Each scenario runs in both pairings, on both engines, and for a room created on
either server (``created_on``), so every feature is exercised in both directions.

spec: server-server-api.md#joining-rooms, server-server-api.md#transactions,
server-server-api.md#backfilling-and-retrieving-missing-events
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.federation.interop.clients import (
    CLIENT_V1,
    Conversation,
    ServerPair,
    SyncWatcher,
    acting,
    create_room,
    has_event_id,
    invite,
    is_membership,
    join,
    new_user,
    room_path,
    send_event,
    send_text,
    start_conversation,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-interop-conversation")]


@pytest.fixture(scope="module", params=["created-on-ours", "created-on-other"])
def conversation(request: pytest.FixtureRequest, servers: ServerPair) -> Conversation:
    """A room one server's user created and the other server's user joined."""
    if request.param == "created-on-ours":
        return start_conversation(servers.ours, servers.other)
    return start_conversation(servers.other, servers.ours)


def joined_member_ids(watcher: SyncWatcher, room_id: str) -> set[str]:
    members = watcher.user.call("GET", room_path(room_id, "joined_members"))["joined"]
    return set(members)


def test_the_invited_user_of_the_other_server_joins(conversation: Conversation) -> None:
    """Both servers agree on who is in the room once the joiner is in."""
    expected = {conversation.creator.user_id, conversation.joiner.user_id}
    for _, watcher in conversation.members():
        assert joined_member_ids(watcher, conversation.room_id) == expected


def test_the_joiner_sees_the_rooms_state_in_a_fresh_sync(conversation: Conversation) -> None:
    """A first /sync after the join shows the room as it is: its state (here the
    creator's membership) in ``state`` or the timeline, not just the joiner's own
    membership.  Clients (nio among them) learn encryption and names from it.

    spec: client-server-api.md#get_matrixclientv3sync
    """
    room: dict[str, Any] = SyncWatcher(conversation.joiner).wait_for(
        lambda body: body.get("rooms", {}).get("join", {}).get(conversation.room_id),
        what="the joined room",
    )
    events = room["state"]["events"] + room["timeline"]["events"]
    seen = {(event["type"], event["state_key"]) for event in events if "state_key" in event}
    assert ("m.room.create", "") in seen, sorted(seen)
    assert ("m.room.power_levels", "") in seen, sorted(seen)
    assert ("m.room.member", conversation.creator.user_id) in seen, sorted(seen)


@pytest.mark.parametrize("created_on", ["ours", "other"])
def test_a_remote_user_invited_by_create_room_gets_the_invite_and_joins(
    servers: ServerPair, created_on: str
) -> None:
    """``createRoom``'s ``invite`` list reaches a remote invitee as a direct message
    room invite would (what clients do to open a DM).

    spec: client-server-api.md#post_matrixclientv3createroom, server-server-api.md#inviting-to-a-room
    """
    home, away = (
        (servers.ours, servers.other) if created_on == "ours" else (servers.other, servers.ours)
    )
    creator, invitee = new_user(home, "dmcreator"), new_user(away, "dminvitee")
    room_id = create_room(creator, invite=[invitee.user_id], is_direct=True)
    SyncWatcher(invitee).wait_for_invite(room_id)
    join(invitee, room_id, [home.server_name])
    SyncWatcher(creator).wait_for_event(
        room_id, lambda event: is_membership(event, invitee.user_id, "join"), what="the join"
    )


#: Who acts: the user of the server that created the room, or the one who joined.
BOTH_WAYS = pytest.mark.parametrize("actor", ["creator", "joiner"])


@BOTH_WAYS
def test_messages_reach_the_other_server(conversation: Conversation, actor: str) -> None:
    sender, receiver_sync = acting(conversation, actor)
    body = f"hello from {sender.user_id}"
    event_id = send_text(sender, conversation.room_id, body)
    seen = receiver_sync.wait_for_event(
        conversation.room_id, has_event_id(event_id), what=f"the message {body!r}"
    )
    assert seen["sender"] == sender.user_id
    assert seen["content"] == {"msgtype": "m.text", "body": body}


@BOTH_WAYS
def test_edits_reach_the_other_server(conversation: Conversation, actor: str) -> None:
    """spec: client-server-api/modules/event_replacements.md"""
    sender, receiver_sync = acting(conversation, actor)
    original = send_text(sender, conversation.room_id, f"tpyo by {sender.user_id}")
    new_content = {"msgtype": "m.text", "body": f"typo by {sender.user_id}"}
    edit = send_event(
        sender,
        conversation.room_id,
        "m.room.message",
        {
            "msgtype": "m.text",
            "body": f"* {new_content['body']}",
            "m.new_content": new_content,
            "m.relates_to": {"rel_type": "m.replace", "event_id": original},
        },
    )
    seen = receiver_sync.wait_for_event(conversation.room_id, has_event_id(edit), what="the edit")
    assert seen["content"]["m.relates_to"] == {"rel_type": "m.replace", "event_id": original}
    assert seen["content"]["m.new_content"] == new_content
    # The receiving server relates the edit to the original it holds.
    relations = receiver_sync.user.call(
        "GET",
        room_path(conversation.room_id, "relations", original, "m.replace"),
        api=CLIENT_V1,
    )
    assert [event["event_id"] for event in relations["chunk"]] == [edit]


@BOTH_WAYS
def test_redactions_reach_the_other_server(conversation: Conversation, actor: str) -> None:
    """spec: client-server-api.md#redactions, server-server-api.md#redactions"""
    sender, receiver_sync = acting(conversation, actor)
    receiver = receiver_sync.user
    original = send_text(sender, conversation.room_id, f"regrettable, by {sender.user_id}")
    receiver_sync.wait_for_event(
        conversation.room_id, has_event_id(original), what="the message to redact"
    )
    redaction: str = sender.call(
        "PUT",
        room_path(conversation.room_id, "redact", original, f"redact-{original}"),
        {"reason": "oops"},
    )["event_id"]
    seen = receiver_sync.wait_for_event(
        conversation.room_id, has_event_id(redaction), what="the redaction"
    )
    assert seen["type"] == "m.room.redaction"
    assert original in (seen.get("redacts"), seen["content"].get("redacts"))
    redacted = receiver.call("GET", room_path(conversation.room_id, "event", original))
    assert redacted["content"] == {}
    assert redacted["unsigned"]["redacted_because"]["event_id"] == redaction


@pytest.mark.parametrize("created_on", ["ours", "other"])
def test_history_is_backfilled_for_the_joiner(servers: ServerPair, created_on: str) -> None:
    """Messages sent before the joiner's server was in the room are fetched from the
    other server when the joiner paginates back (history visibility ``shared``).

    spec: server-server-api.md#backfilling-and-retrieving-missing-events
    """
    home, away = (
        (servers.ours, servers.other) if created_on == "ours" else (servers.other, servers.ours)
    )
    creator = new_user(home, "historian")
    joiner = new_user(away, "latecomer")
    room_id: str = creator.call(
        "POST",
        "/createRoom",
        {
            "preset": "private_chat",
            "initial_state": [
                {
                    "type": "m.room.history_visibility",
                    "state_key": "",
                    "content": {"history_visibility": "shared"},
                }
            ],
        },
    )["room_id"]
    early = [f"early message {n}" for n in range(25)]
    for body in early:
        send_text(creator, room_id, body)
    invite(creator, room_id, joiner)
    SyncWatcher(joiner).wait_for_invite(room_id)
    join(joiner, room_id, [home.server_name])

    seen_bodies: list[str] = []
    start: str | None = None
    for _ in range(20):  # pages of 10: enough for 25 messages and the room's state
        query = "dir=b&limit=10" + (f"&from={start}" if start else "")
        page: dict[str, Any] = joiner.call("GET", room_path(room_id, "messages") + "?" + query)
        seen_bodies.extend(
            event["content"].get("body", "")
            for event in page["chunk"]
            if event["type"] == "m.room.message"
        )
        if "end" not in page or not page["chunk"]:
            break
        start = page["end"]
    assert [body for body in reversed(seen_bodies) if body.startswith("early")] == early
