"""Unread notification counts in /sync over HTTP, on both engines: exact however
large the backlog, moved forward from checkpoints, cleared by receipts from the
receipt on, and recounted when the user's push rules change.

spec: client-server-api/modules/push.md#receiving-notifications (unread counts),
client-server-api/_index.md#receiving-notifications, data/api/client-server/sync.yaml
(``unread_notifications``)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.api.client.test_push_rules import rule_path
from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_sync import sync
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def two_users_in_a_room(server: ServerProcess) -> tuple[str, str, str]:
    """(alice's token, bob's token, room ID): alice's public room that bob joined."""
    alice = register(server, "alice")["access_token"]
    bob = register(server, "bob")["access_token"]
    room_id = create_room(server, alice, preset="public_chat")
    assert call(server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    return alice, bob, room_id


def send_many(
    server: ServerProcess, token: str, room_id: str, count: int, prefix: str
) -> list[str]:
    """Send ``count`` messages (a few requests in flight at once); their event IDs in
    the order they were asked for."""

    def send(index: int) -> str:
        response = send_text(server, token, room_id, f"{prefix} {index}", f"{prefix}-{index}")
        assert response.status == 200, response.body
        event_id: str = response.json()["event_id"]
        return event_id

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(send, range(count)))


def counts(server: ServerProcess, token: str, room_id: str) -> dict[str, Any]:
    body = sync(server, token)
    result: dict[str, Any] = body["rooms"]["join"][room_id]["unread_notifications"]
    return result


def read(server: ServerProcess, token: str, room_id: str, event_id: str) -> None:
    response = call(
        server, "POST", f"/rooms/{room_id}/receipt/m.read/{event_id}", token=token, body={}
    )
    assert response.status == 200, response.body


def mention(server: ServerProcess, token: str, room_id: str, txn: str) -> str:
    response = call(
        server,
        "PUT",
        f"/rooms/{room_id}/send/m.room.message/{txn}",
        token=token,
        body={"msgtype": "m.text", "body": "bob!", "m.mentions": {"user_ids": ["@bob:localhost"]}},
    )
    assert response.status == 200, response.body
    event_id: str = response.json()["event_id"]
    return event_id


def test_unread_count_is_exact_beyond_a_thousand_messages(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    send_many(open_server, alice, room_id, 1200, "m")
    assert counts(open_server, bob, room_id) == {"notification_count": 1200, "highlight_count": 0}
    send_text(open_server, alice, room_id, "one more", "last")
    assert counts(open_server, bob, room_id)["notification_count"] == 1201


def test_counts_advance_incrementally_and_reset_on_receipt(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    assert counts(open_server, bob, room_id)["notification_count"] == 0
    send_many(open_server, alice, room_id, 3, "a")
    assert counts(open_server, bob, room_id)["notification_count"] == 3
    latest = send_many(open_server, alice, room_id, 2, "b")
    assert counts(open_server, bob, room_id)["notification_count"] == 5
    # An incremental /sync carries the same counts.
    first = sync(open_server, bob)
    text = send_text(open_server, alice, room_id, "c", "c").json()["event_id"]
    later = sync(open_server, bob, f"?since={first['next_batch']}")
    assert later["rooms"]["join"][room_id]["unread_notifications"]["notification_count"] == 6
    read(open_server, bob, room_id, text)
    assert counts(open_server, bob, room_id) == {"notification_count": 0, "highlight_count": 0}
    send_text(open_server, alice, room_id, "d", "d")
    assert counts(open_server, bob, room_id)["notification_count"] == 1
    # A receipt behind the newest one does not bring read messages back.
    read(open_server, bob, room_id, latest[0])
    assert counts(open_server, bob, room_id)["notification_count"] == 1


def test_receipt_in_the_middle_of_the_backlog_leaves_the_later_messages_counted(
    open_server: ServerProcess,
) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    sent = [
        send_text(open_server, alice, room_id, str(i), f"t{i}").json()["event_id"]
        for i in range(10)
    ]
    assert counts(open_server, bob, room_id)["notification_count"] == 10
    read(open_server, bob, room_id, sent[6])
    assert counts(open_server, bob, room_id)["notification_count"] == 3
    read(open_server, bob, room_id, sent[8])
    assert counts(open_server, bob, room_id)["notification_count"] == 1


def test_push_rule_change_recomputes_counts(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    send_many(open_server, alice, room_id, 4, "m")
    assert counts(open_server, bob, room_id)["notification_count"] == 4
    muted = call(open_server, "PUT", rule_path("room", room_id), token=bob, body={"actions": []})
    assert muted.status == 200, muted.body
    assert counts(open_server, bob, room_id)["notification_count"] == 0
    send_text(open_server, alice, room_id, "unheard", "x")
    assert counts(open_server, bob, room_id)["notification_count"] == 0
    assert call(open_server, "DELETE", rule_path("room", room_id), token=bob).status == 200
    assert counts(open_server, bob, room_id)["notification_count"] == 5


def test_highlight_count_survives_checkpointing(open_server: ServerProcess) -> None:
    alice, bob, room_id = two_users_in_a_room(open_server)
    mention(open_server, alice, room_id, "m1")
    send_many(open_server, alice, room_id, 3, "a")
    assert counts(open_server, bob, room_id) == {"notification_count": 4, "highlight_count": 1}
    # Moved forward from the checkpoint: the earlier mention still highlights.
    between = send_text(open_server, alice, room_id, "between", "between").json()["event_id"]
    second = mention(open_server, alice, room_id, "m2")
    send_many(open_server, alice, room_id, 2, "b")
    assert counts(open_server, bob, room_id) == {"notification_count": 8, "highlight_count": 2}
    # A receipt between the mentions leaves only the later one highlighted.
    read(open_server, bob, room_id, between)
    assert counts(open_server, bob, room_id) == {"notification_count": 3, "highlight_count": 1}
    read(open_server, bob, room_id, second)
    assert counts(open_server, bob, room_id) == {"notification_count": 2, "highlight_count": 0}


def send_encrypted(server: ServerProcess, token: str, room_id: str, txn: str) -> str:
    """An ``m.room.encrypted`` event as a Megolm client sends it (the server never
    sees more than this)."""
    response = call(
        server,
        "PUT",
        f"/rooms/{room_id}/send/m.room.encrypted/{txn}",
        token=token,
        body={
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg2yyOwAtHaZTwyNg37afzg8f3r9IsN9r4",
            "device_id": "RJYKSTBOIE",
            "sender_key": "IlRMeOPX2e0MurIyfWEucYBRVOEEUMrOHqn/8mLqMjA",
            "session_id": "X3lUlvLELLYxeTx4yOVu6UDpasGEVO0Jbu+QFnm0cKQ",
        },
    )
    assert response.status == 200, response.body
    event_id: str = response.json()["event_id"]
    return event_id


def test_encrypted_messages_count_as_unread(open_server: ServerProcess) -> None:
    """The server cannot read them, so ``.m.rule.encrypted_room_one_to_one`` and
    ``.m.rule.encrypted`` make every one notify.

    spec: client-server-api/modules/push.md#default-underride-rules
    """
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    # Private rooms are encrypted by default.
    direct = create_room(open_server, alice, is_direct=True, invite=["@bob:localhost"])
    group = create_room(open_server, alice, invite=["@bob:localhost", "@carol:localhost"])
    for name, room_id, members in (("direct", direct, [bob]), ("group", group, [bob, carol])):
        for token in members:
            joined = call(open_server, "POST", f"/join/{room_id}", token=token, body={})
            assert joined.status == 200, joined.body
        for index in range(2):
            send_encrypted(open_server, alice, room_id, f"{name}-{index}")
    assert counts(open_server, bob, direct) == {"notification_count": 2, "highlight_count": 0}
    assert counts(open_server, bob, group) == {"notification_count": 2, "highlight_count": 0}
    # The sender's own encrypted messages never count for them.
    assert counts(open_server, alice, group)["notification_count"] == 0
