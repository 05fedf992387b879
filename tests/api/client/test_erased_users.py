"""Deactivating with ``erase: true``: later joiners see the user's events redacted.

spec: client-server-api/_index.md#post_matrixclientv3accountdeactivate (``erase``:
"any users (or servers) which join the room after the erasure request are served
redacted copies of the events sent by this account.  Users which had visibility on
the events before the erasure are still able to see unredacted copies.")
"""

from __future__ import annotations

from typing import Any

from tests.api.client.test_rooms import create_room, send_text
from tests.support.matrix import call, password_auth, register
from tests.support.server_process import ServerProcess


def deactivate(server: ServerProcess, token: str, username: str, *, erase: bool) -> None:
    first = call(server, "POST", "/account/deactivate", token=token, body={})
    session = first.json()["session"]
    done = call(
        server,
        "POST",
        "/account/deactivate",
        token=token,
        body={"auth": password_auth(username, session=session), "erase": erase},
    )
    assert done.status == 200, done.body


def messages_from(
    server: ServerProcess, token: str, room_id: str, sender: str
) -> list[dict[str, Any]]:
    page = call(server, "GET", f"/rooms/{room_id}/messages?dir=b&limit=100", token=token)
    assert page.status == 200, page.body
    return [
        e for e in page.json()["chunk"] if e["sender"] == sender and e["type"] == "m.room.message"
    ]


def test_erased_users_messages_are_redacted_for_later_joiners(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    sent = send_text(open_server, bob, room_id, "bob's secret", "t1").json()["event_id"]
    deactivate(open_server, bob, "bob", erase=True)
    assert call(open_server, "POST", f"/join/{room_id}", token=carol, body={}).status == 200

    # carol joined after the erasure: the content is gone, the event is still there.
    [for_carol] = messages_from(open_server, carol, room_id, "@bob:localhost")
    assert for_carol["event_id"] == sent
    assert for_carol["content"] == {}
    single = call(open_server, "GET", f"/rooms/{room_id}/event/{sent}", token=carol)
    assert single.status == 200, single.body
    assert single.json()["content"] == {}
    context = call(open_server, "GET", f"/rooms/{room_id}/context/{sent}", token=carol)
    assert context.json()["event"]["content"] == {}
    # alice was in the room when bob wrote it: she still sees it.
    [for_alice] = messages_from(open_server, alice, room_id, "@bob:localhost")
    assert for_alice["content"]["body"] == "bob's secret"


def test_deactivation_without_erase_redacts_nothing(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    send_text(open_server, bob, room_id, "still here", "t1")
    deactivate(open_server, bob, "bob", erase=False)
    assert call(open_server, "POST", f"/join/{room_id}", token=carol, body={}).status == 200
    [for_carol] = messages_from(open_server, carol, room_id, "@bob:localhost")
    assert for_carol["content"]["body"] == "still here"
