"""Device-list tracking: ``device_lists`` in ``/sync`` and ``GET /keys/changes``,
against the real server over HTTP (both engines).

spec: client-server-api/modules/end_to_end_encryption.md#tracking-the-device-list-for-a-user,
#e2e-extensions-to-sync, #get_matrixclientv3keyschanges
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote

from tests.api.client.test_keys import Device, new_device
from tests.api.client.test_rooms import create_room
from tests.support.matrix import call, login, password_auth
from tests.support.server_process import ServerProcess


def device_lists(device: Device, since: str) -> dict[str, Any]:
    lists: dict[str, Any] = device.sync(since)["device_lists"]
    return lists


def next_batch(device: Device) -> str:
    token: str = device.sync()["next_batch"]
    return token


def join(device: Device, room_id: str) -> None:
    response = device.post(f"/join/{quote(room_id)}", {})
    assert response.status == 200, response.body


def leave(device: Device, room_id: str) -> None:
    response = device.post(f"/rooms/{quote(room_id)}/leave", {})
    assert response.status == 200, response.body


def upload_keys(device: Device) -> None:
    response = device.upload(device_keys=device.device_keys())
    assert response.status == 200, response.body


def keys_changes(device: Device, query: str) -> Any:
    return call(device.server, "GET", f"/keys/changes{query}", device.token)


def shared_room(owner: Device, *members: Device) -> str:
    room_id = create_room(owner.server, owner.token, preset="public_chat")
    for member in members:
        join(member, room_id)
    return room_id


def test_initial_sync_has_empty_device_lists(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "dl_initial")
    upload_keys(alice)
    assert alice.sync()["device_lists"] == {"changed": [], "left": []}


def test_new_device_keys_reach_room_mates_and_not_strangers(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "dl_alice")
    bob = new_device(open_server, "dl_bob")
    carol = new_device(open_server, "dl_carol")
    shared_room(alice, bob)
    create_room(open_server, carol.token, preset="public_chat")
    since = {device.user_id: next_batch(device) for device in (alice, bob, carol)}

    bob_laptop = Device(open_server, login(open_server, "dl_bob"))
    upload_keys(bob_laptop)

    assert device_lists(alice, since[alice.user_id]) == {"changed": [bob.user_id], "left": []}
    # The requester's own new device: their other devices must learn of it too.
    assert device_lists(bob, since[bob.user_id])["changed"] == [bob.user_id]
    assert device_lists(carol, since[carol.user_id]) == {"changed": [], "left": []}

    # Uploading the same keys again changes nothing.
    after = next_batch(alice)
    upload_keys(bob_laptop)
    assert device_lists(alice, after)["changed"] == []


def test_deleted_and_renamed_devices_are_changes(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "dl_alice2")
    bob = new_device(open_server, "dl_bob2")
    shared_room(alice, bob)
    bob_phone = Device(open_server, login(open_server, "dl_bob2"))
    bob_tablet = Device(open_server, login(open_server, "dl_bob2"))
    for device in (bob, bob_phone, bob_tablet):
        upload_keys(device)

    since = next_batch(alice)
    assert bob_phone.post("/logout", {}).status == 200
    assert device_lists(alice, since)["changed"] == [bob.user_id]

    since = next_batch(alice)
    renamed = call(
        open_server, "PUT", f"/devices/{bob.device_id}", bob.token, {"display_name": "Work"}
    )
    assert renamed.status == 200, renamed.body
    assert device_lists(alice, since)["changed"] == [bob.user_id]

    since = next_batch(alice)
    body: dict[str, Any] = {"devices": [bob_tablet.device_id]}
    session = bob.post("/delete_devices", body).json()["session"]
    body["auth"] = password_auth("dl_bob2", session=session)
    assert bob.post("/delete_devices", body).status == 200
    assert device_lists(alice, since)["changed"] == [bob.user_id]


def test_joining_a_room_shares_device_lists_both_ways(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "dl_alice3")
    dave = new_device(open_server, "dl_dave3")
    bob = new_device(open_server, "dl_bob3")
    room_id = shared_room(alice, dave)
    alice_since, dave_since, bob_since = next_batch(alice), next_batch(dave), next_batch(bob)

    join(bob, room_id)

    # The joiner learns of every member; every member learns of the joiner.
    assert device_lists(bob, bob_since) == {
        "changed": sorted([alice.user_id, dave.user_id]),
        "left": [],
    }
    assert device_lists(alice, alice_since) == {"changed": [bob.user_id], "left": []}
    assert device_lists(dave, dave_since) == {"changed": [bob.user_id], "left": []}


def test_leaving_the_last_shared_room_puts_users_in_left(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "dl_alice4")
    bob = new_device(open_server, "dl_bob4")
    first = shared_room(alice, bob)
    second = shared_room(alice, bob)

    alice_since, bob_since = next_batch(alice), next_batch(bob)
    leave(bob, first)
    # Still sharing the second room: nobody has left anybody.
    assert device_lists(alice, alice_since) == {"changed": [], "left": []}
    assert device_lists(bob, bob_since) == {"changed": [], "left": []}

    alice_since, bob_since = next_batch(alice), next_batch(bob)
    leave(bob, second)
    assert device_lists(alice, alice_since) == {"changed": [], "left": [bob.user_id]}
    assert device_lists(bob, bob_since) == {"changed": [], "left": [alice.user_id]}


def test_a_kicked_user_and_the_room_leave_each_other(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "dl_alice5")
    carol = new_device(open_server, "dl_carol5")
    room_id = shared_room(alice, carol)
    alice_since, carol_since = next_batch(alice), next_batch(carol)
    kicked = alice.post(f"/rooms/{quote(room_id)}/kick", {"user_id": carol.user_id})
    assert kicked.status == 200, kicked.body
    assert device_lists(alice, alice_since)["left"] == [carol.user_id]
    assert device_lists(carol, carol_since)["left"] == [alice.user_id]


def test_left_names_only_those_shared_when_the_requester_left(
    open_server: ServerProcess,
) -> None:
    alice = new_device(open_server, "dl_alice8")
    bob = new_device(open_server, "dl_bob8")
    carol = new_device(open_server, "dl_carol8")
    dave = new_device(open_server, "dl_dave8")
    room_id = shared_room(alice, bob, carol)
    bob_since = next_batch(bob)
    leave(bob, room_id)
    # After bob left: carol goes too, dave comes; bob never shared the room with dave.
    leave(carol, room_id)
    join(dave, room_id)
    assert device_lists(bob, bob_since) == {
        "changed": [],
        "left": sorted([alice.user_id, carol.user_id]),
    }


def test_a_device_change_after_leaving_is_not_reported(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "dl_alice6")
    bob = new_device(open_server, "dl_bob6")
    room_id = shared_room(alice, bob)
    leave(bob, room_id)
    since = next_batch(alice)
    upload_keys(Device(open_server, login(open_server, "dl_bob6")))
    assert device_lists(alice, since) == {"changed": [], "left": []}


def test_long_poll_wakes_when_a_room_mate_uploads_device_keys(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "dl_alice7")
    bob = new_device(open_server, "dl_bob7")
    shared_room(alice, bob)
    since = next_batch(alice)
    result: dict[str, Any] = {}

    def wait() -> None:
        path = f"/sync?since={quote(since)}&timeout=30000"
        result["body"] = call(open_server, "GET", path, alice.token).json()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)
    assert "body" not in result  # still waiting
    upload_keys(bob)
    waiter.join(timeout=25)
    # A timed-out poll would answer with nothing: the change is what woke it.
    assert result["body"]["device_lists"]["changed"] == [bob.user_id]


def test_keys_changes_between_two_sync_tokens(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "dl_alice8")
    bob = new_device(open_server, "dl_bob8")
    carol = new_device(open_server, "dl_carol8")
    room_id = shared_room(alice, bob, carol)
    start = next_batch(alice)
    upload_keys(bob)
    leave(carol, room_id)
    end = next_batch(alice)
    upload_keys(Device(open_server, login(open_server, "dl_carol8")))

    response = keys_changes(alice, f"?from={quote(start)}&to={quote(end)}")
    assert response.status == 200, response.body
    assert response.json() == {"changed": [bob.user_id], "left": [carol.user_id]}
    # Nothing in an empty span, or one that runs backwards.
    for query in (f"?from={quote(end)}&to={quote(end)}", f"?from={quote(end)}&to={quote(start)}"):
        assert keys_changes(alice, query).json() == {"changed": [], "left": []}


def test_keys_changes_needs_two_sync_tokens(open_server: ServerProcess) -> None:
    alice = new_device(open_server, "dl_alice9")
    token = quote(next_batch(alice))
    for query in ("", f"?from={token}", f"?to={token}"):
        response = keys_changes(alice, query)
        assert response.status == 400, response.body
        assert response.json()["errcode"] == "M_MISSING_PARAM"
    for query in (f"?from=nonsense&to={token}", f"?from={token}&to=s1_x"):
        response = keys_changes(alice, query)
        assert response.status == 400, response.body
        assert response.json()["errcode"] == "M_INVALID_PARAM"
    assert call(open_server, "GET", f"/keys/changes?from={token}&to={token}").status == 401
