"""``GET /notifications`` over HTTP, on both engines: the list agrees with the unread
badge, ``read`` follows receipts, ``only=highlight`` filters, pages join up without
loss or repeats, and what does not notify (own messages, events no enabled rule
notifies about, a room after the user left it or before they joined, ignored
senders) is absent.  The work bound per request: tests/notifications/test_finder.py.

spec: client-server-api/modules/push.md, data/api/client-server/notifications.yaml
"""

from __future__ import annotations

from typing import Any

from tests.api.client.test_push_rules import rule_path
from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_unread_counts import (
    counts,
    mention,
    read,
    send_many,
    two_users_in_a_room,
)
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def notifications(server: ServerProcess, token: str, query: str = "") -> dict[str, Any]:
    response = call(server, "GET", f"/notifications{query}", token=token)
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def event_ids(body: dict[str, Any]) -> list[str]:
    return [n["event"]["event_id"] for n in body["notifications"]]


def test_the_list_matches_the_badge_and_read_follows_receipts(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    sent = send_many(open_server, alice, room_id, 5, "hello")
    own = send_text(open_server, bob, room_id, "bob's own message", "own").json()["event_id"]
    # Bob's own message marks what came before read; send more after it.
    later = [
        send_text(open_server, alice, room_id, f"later {i}", f"later-{i}").json()["event_id"]
        for i in range(3)
    ]
    body = notifications(open_server, bob)
    listed = body["notifications"]
    assert "next_token" not in body
    assert len(listed) == 8
    assert sorted(event_ids(body)) == sorted(sent + later)
    assert event_ids(body)[:3] == list(reversed(later))  # newest first
    badge = counts(open_server, bob, room_id)["notification_count"]
    assert [n["read"] for n in listed].count(False) == badge == 3
    first = listed[0]
    assert first["room_id"] == room_id
    assert first["actions"][0] == "notify"
    assert first["event"]["sender"] == "@alice:localhost"
    assert first["event"]["content"]["body"] == "later 2"
    assert "room_id" not in first["event"]
    assert isinstance(first["ts"], int)

    read(open_server, bob, room_id, later[1])
    flags = {
        n["event"]["event_id"]: n["read"] for n in notifications(open_server, bob)["notifications"]
    }
    assert flags[later[0]] and flags[later[1]] and not flags[later[2]]
    assert counts(open_server, bob, room_id)["notification_count"] == 1
    # Alice's list has nothing of her own: only Bob's message, read by what she sent after.
    [bobs] = notifications(open_server, alice)["notifications"]
    assert (bobs["event"]["event_id"], bobs["read"]) == (own, True)


def test_only_highlight_lists_mentions(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    send_text(open_server, alice, room_id, "plain", "plain")
    mentioned = mention(open_server, alice, room_id, "mention")
    send_text(open_server, alice, room_id, "plain again", "plain-2")
    assert len(notifications(open_server, bob)["notifications"]) == 3
    highlights = notifications(open_server, bob, "?only=highlight")
    assert event_ids(highlights) == [mentioned]
    assert {"set_tweak": "highlight"} in highlights["notifications"][0]["actions"]
    bad = call(open_server, "GET", "/notifications?only=loud", token=bob)
    assert (bad.status, bad.json()["errcode"]) == (400, "M_INVALID_PARAM")
    bad_token = call(open_server, "GET", "/notifications?from=xyz", token=bob)
    assert (bad_token.status, bad_token.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_pages_join_up_without_loss_or_repeats(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    other = create_room(open_server, alice, preset="public_chat")
    assert call(open_server, "POST", f"/join/{other}", token=bob, body={}).status == 200
    sent = send_many(open_server, alice, room_id, 7, "a") + send_many(
        open_server, alice, other, 6, "b"
    )
    seen: list[str] = []
    query = "?limit=4"
    pages = 0
    while True:
        body = notifications(open_server, bob, query)
        assert len(body["notifications"]) <= 4
        seen += event_ids(body)
        pages += 1
        if "next_token" not in body:
            break
        query = f"?limit=4&from={body['next_token']}"
    assert pages >= 4
    assert len(seen) == len(set(seen)) == 13
    assert set(seen) == set(sent)


def test_events_that_do_not_notify_are_absent(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    topic = call(
        open_server, "PUT", f"/rooms/{room_id}/state/m.room.topic", token=alice, body={"topic": "t"}
    )
    assert topic.status == 200
    for rule_id in (".m.rule.room_one_to_one", ".m.rule.message"):
        disabled = call(
            open_server,
            "PUT",
            rule_path("underride", rule_id, "/enabled"),
            token=bob,
            body={"enabled": False},
        )
        assert disabled.status == 200, disabled.body
    send_text(open_server, alice, room_id, "quiet", "quiet")
    assert notifications(open_server, bob)["notifications"] == []
    assert counts(open_server, bob, room_id)["notification_count"] == 0


def test_a_room_left_shows_only_events_up_to_the_leave(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    carol = register(open_server, "carol")["access_token"]
    assert call(open_server, "POST", f"/join/{room_id}", token=carol, body={}).status == 200
    before = send_many(open_server, alice, room_id, 2, "before")
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=bob, body={}).status == 200
    send_many(open_server, alice, room_id, 2, "after")
    assert sorted(event_ids(notifications(open_server, bob))) == sorted(before)
    # Carol stayed: she is notified of everything since her join, before and after.
    assert len(set(event_ids(notifications(open_server, carol)))) == 4
    assert not set(before) - set(event_ids(notifications(open_server, carol)))


def test_events_from_before_a_join_are_not_listed(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    earlier = send_many(open_server, alice, room_id, 3, "earlier")
    dave = register(open_server, "dave")["access_token"]
    assert call(open_server, "POST", f"/join/{room_id}", token=dave, body={}).status == 200
    later = send_many(open_server, alice, room_id, 2, "later")
    assert sorted(event_ids(notifications(open_server, dave))) == sorted(later)
    assert sorted(event_ids(notifications(open_server, bob))) == sorted(earlier + later)


def test_events_of_ignored_senders_are_absent(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    erin = register(open_server, "erin")["access_token"]
    assert call(open_server, "POST", f"/join/{room_id}", token=erin, body={}).status == 200
    from_alice = send_many(open_server, alice, room_id, 2, "alice")
    from_erin = send_many(open_server, erin, room_id, 2, "erin")
    assert sorted(event_ids(notifications(open_server, bob))) == sorted(from_alice + from_erin)
    ignored = call(
        open_server,
        "PUT",
        "/user/@bob:localhost/account_data/m.ignored_user_list",
        token=bob,
        body={"ignored_users": {"@alice:localhost": {}}},
    )
    assert ignored.status == 200, ignored.body
    send_many(open_server, alice, room_id, 2, "alice-again")
    assert sorted(event_ids(notifications(open_server, bob))) == sorted(from_erin)
