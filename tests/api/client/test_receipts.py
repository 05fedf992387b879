"""``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`` over HTTP, with rooms
made through ``/createRoom``, ``/join`` and ``/send``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def create_room(server: ServerProcess, token: str) -> str:
    response = call(server, "POST", "/createRoom", token=token, body={"preset": "public_chat"})
    assert response.status == 200, response.body
    room_id: str = response.json()["room_id"]
    return room_id


def join(server: ServerProcess, token: str, room_id: str) -> None:
    response = call(server, "POST", f"/rooms/{quote(room_id)}/join", token=token, body={})
    assert response.status == 200, response.body


def send(server: ServerProcess, token: str, room_id: str, txn: str, **content: Any) -> str:
    body = {"msgtype": "m.text", "body": "hello", **content}
    path = f"/rooms/{quote(room_id)}/send/m.room.message/{txn}"
    response = call(server, "PUT", path, token=token, body=body)
    assert response.status == 200, response.body
    event_id: str = response.json()["event_id"]
    return event_id


def receipt(
    server: ServerProcess,
    token: str,
    room_id: str,
    event_id: str,
    receipt_type: str = "m.read",
    body: Any = None,
) -> tuple[int, Any]:
    path = f"/rooms/{quote(room_id)}/receipt/{quote(receipt_type)}/{quote(event_id)}"
    response = call(server, "POST", path, token=token, body={} if body is None else body)
    return response.status, response.json()


def test_members_send_read_and_private_receipts(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice)
    join(open_server, bob, room_id)
    root = send(open_server, alice, room_id, "1")
    in_thread = send(
        open_server,
        alice,
        room_id,
        "2",
        **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}},
    )
    assert receipt(open_server, bob, room_id, root) == (200, {})
    assert receipt(open_server, bob, room_id, root, "m.read.private") == (200, {})
    assert receipt(open_server, bob, room_id, root, body={"thread_id": "main"}) == (200, {})
    assert receipt(open_server, bob, room_id, in_thread, body={"thread_id": root}) == (200, {})
    # An older event than the current receipt is accepted and changes nothing.
    assert receipt(open_server, bob, room_id, root) == (200, {})


def test_bad_receipts_are_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    room_id = create_room(open_server, alice)
    event_id = send(open_server, alice, room_id, "1")
    other_room = create_room(open_server, alice)
    elsewhere = send(open_server, alice, other_room, "2")

    def refused(status: tuple[int, Any], code: int, errcode: str) -> None:
        assert (status[0], status[1]["errcode"]) == (code, errcode), status

    refused(receipt(open_server, carol, room_id, event_id), 403, "M_FORBIDDEN")
    refused(receipt(open_server, alice, room_id, elsewhere), 404, "M_NOT_FOUND")
    refused(receipt(open_server, alice, room_id, "$nope"), 404, "M_NOT_FOUND")
    refused(receipt(open_server, alice, room_id, event_id, "m.seen"), 400, "M_INVALID_PARAM")
    for thread_id in (5, "", "nonsense", None):
        refused(
            receipt(open_server, alice, room_id, event_id, body={"thread_id": thread_id}),
            400,
            "M_INVALID_PARAM",
        )
    refused(
        receipt(open_server, alice, room_id, event_id, body={"thread_id": event_id + "x"}),
        400,
        "M_INVALID_PARAM",
    )
    refused(
        receipt(open_server, alice, room_id, event_id, "m.fully_read", {"thread_id": "main"}),
        400,
        "M_INVALID_PARAM",
    )
    path = f"/rooms/{quote(room_id)}/receipt/m.read/{quote(event_id)}"
    response = call(open_server, "POST", path, body={})
    assert (response.status, response.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    response = open_server.request(
        "POST",
        "/_matrix/client/v3" + path,
        body=b"[1, 2]",
        headers={"Authorization": f"Bearer {alice}"},
    )
    assert (response.status, response.json()["errcode"]) == (400, "M_BAD_JSON")
    response = open_server.request(
        "POST", "/_matrix/client/v3" + path, body=b"{", headers={"Authorization": f"Bearer {alice}"}
    )
    assert (response.status, response.json()["errcode"]) == (400, "M_NOT_JSON")


def test_a_receipt_without_a_body_is_accepted(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    event_id = send(open_server, alice, room_id, "1")
    path = f"/_matrix/client/r0/rooms/{quote(room_id)}/receipt/m.read/{quote(event_id)}"
    response = open_server.request("POST", path, headers={"Authorization": f"Bearer {alice}"})
    assert (response.status, response.json()) == (200, {})
