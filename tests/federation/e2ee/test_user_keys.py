"""Our users' keys served to other servers, and local clients' key queries, claims
and to-device messages for users of another server: two of our servers over TLS,
on each database engine.

spec: server-server-api.md#device-management, #end-to-end-encryption,
#send-to-device-messaging
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import quote

import pytest
from signedjson.sign import sign_json

from tests.federation.e2ee.keys import (
    login_new_device,
    upload_cross_signing_keys,
    upload_device_keys,
)
from tests.federation.interop.clients import (
    ServerPair,
    SyncWatcher,
    User,
    create_room,
    is_membership,
    join,
    new_user,
    room_path,
    start_conversation,
)
from tests.support import http
from tests.support.federation import FederatedServer, federation_request

pytestmark = [pytest.mark.slow]

V1 = "/_matrix/federation/v1"


def signed(
    servers: ServerPair,
    origin: FederatedServer,
    destination: FederatedServer,
    method: str,
    path: str,
    body: Any = None,
) -> http.Response:
    """A request from ``origin`` (signed with its real key) to ``destination``."""
    return federation_request(
        servers.ca,
        destination,
        method,
        path,
        body=body,
        origin=origin.server_name,
        signing_key=origin.signing_key(),
    )


def user_devices_path(user_id: str) -> str:
    return f"{V1}/user/devices/{quote(user_id, safe='')}"


def test_user_devices_lists_keys_and_a_stream_id_that_grows(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    alice = new_user(a, "alice")
    alice.call("PUT", f"/devices/{alice.device_id}", {"display_name": "Alice's secret phone"})
    uploaded = upload_device_keys(alice)

    first = signed(servers, b, a, "GET", user_devices_path(alice.user_id))
    assert first.status == 200, first.body
    body = first.json()
    assert body["user_id"] == alice.user_id
    assert body["devices"] == [{"device_id": alice.device_id, "keys": uploaded}]
    assert "Alice's secret phone" not in first.body.decode("utf-8")

    second_device = login_new_device(a, alice)
    upload_device_keys(second_device)
    # The announcer numbers the change in the background (it consumes the
    # device_lists stream): the list is current at once, its stream_id soon after.
    deadline = time.monotonic() + 10
    while True:
        later = signed(servers, b, a, "GET", user_devices_path(alice.user_id)).json()
        if later["stream_id"] > body["stream_id"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert later["stream_id"] > body["stream_id"]
    assert {d["device_id"] for d in later["devices"]} == {
        alice.device_id,
        second_device.device_id,
    }


def test_cross_signing_keys_are_served_with_the_devices(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    alice = new_user(a, "alice")
    upload_device_keys(alice)
    keys = upload_cross_signing_keys(alice)
    body = signed(servers, b, a, "GET", user_devices_path(alice.user_id)).json()
    assert body["master_key"] == keys["master_key"]
    assert body["self_signing_key"] == keys["self_signing_key"]
    queried = signed(
        servers, b, a, "POST", f"{V1}/user/keys/query", {"device_keys": {alice.user_id: []}}
    ).json()
    assert queried["master_keys"][alice.user_id] == keys["master_key"]
    assert queried["self_signing_keys"][alice.user_id] == keys["self_signing_key"]


def test_requests_without_a_valid_signature_are_refused(servers: ServerPair) -> None:
    a = servers.ours
    alice = new_user(a, "alice")
    for method, path, body in (
        ("GET", user_devices_path(alice.user_id), None),
        ("POST", f"{V1}/user/keys/query", {"device_keys": {alice.user_id: []}}),
        ("POST", f"{V1}/user/keys/claim", {"one_time_keys": {}}),
    ):
        response = federation_request(servers.ca, a, method, path, body=body)
        assert response.status == 401, (path, response.body)
        assert response.json()["errcode"] == "M_UNAUTHORIZED"


def test_user_devices_of_a_user_of_another_server_is_refused(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    response = signed(servers, b, a, "GET", user_devices_path(b.user_id("someone")))
    assert response.status == 400, response.body


def test_malformed_queries_are_refused(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    for path, body in (
        (f"{V1}/user/keys/query", {"device_keys": []}),
        (f"{V1}/user/keys/query", {"device_keys": {"@x:y": "all"}}),
        (f"{V1}/user/keys/claim", {"one_time_keys": {"@x:y": ["dev"]}}),
    ):
        response = signed(servers, b, a, "POST", path, body)
        assert response.status == 400, (path, body, response.body)


def test_queries_naming_more_than_a_thousand_users_are_answered(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    alice = new_user(a, "alice")
    uploaded = upload_device_keys(alice)
    server_name = alice.user_id.partition(":")[2]
    others: dict[str, list[str]] = {f"@nobody{i}:{server_name}": [] for i in range(1500)}
    query = {"device_keys": {alice.user_id: [], **others}}
    response = signed(servers, b, a, "POST", f"{V1}/user/keys/query", query)
    assert response.status == 200, response.body
    assert response.json()["device_keys"][alice.user_id] == {alice.device_id: uploaded}
    claim = {"one_time_keys": {user: {"D": "signed_curve25519"} for user in others}}
    response = signed(servers, b, a, "POST", f"{V1}/user/keys/claim", claim)
    assert response.status == 200, response.body


def test_one_time_keys_are_claimed_once_over_federation(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    alice = new_user(a, "alice")
    upload_device_keys(alice, one_time_keys=2)
    wanted = {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}}
    claimed = [
        signed(servers, b, a, "POST", f"{V1}/user/keys/claim", wanted).json()["one_time_keys"]
        for _ in range(3)
    ]
    key_ids = [next(iter(c[alice.user_id][alice.device_id])) for c in claimed[:2]]
    assert sorted(key_ids) == ["signed_curve25519:OTK0", "signed_curve25519:OTK1"]
    assert claimed[2] == {}  # no one-time key and no fallback key left


def test_local_clients_query_and_claim_keys_of_remote_users(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    alice = new_user(a, "alice")
    uploaded = upload_device_keys(alice, one_time_keys=1)
    bob = new_user(b, "bob")
    queried = bob.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert queried["failures"] == {}
    assert queried["device_keys"][alice.user_id] == {alice.device_id: uploaded}
    claimed = bob.call(
        "POST",
        "/keys/claim",
        {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}},
    )
    assert claimed["failures"] == {}
    assert list(claimed["one_time_keys"][alice.user_id][alice.device_id]) == [
        "signed_curve25519:OTK0"
    ]


def test_an_unreachable_server_is_listed_in_failures(servers: ServerPair) -> None:
    bob = new_user(servers.other, "bob")
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    nobody = "@nobody:localhost:1"
    queried = bob.call("POST", "/keys/query", {"device_keys": {nobody: []}, "timeout": 5000})
    assert "localhost:1" in queried["failures"]
    claimed = bob.call("POST", "/keys/claim", {"one_time_keys": {nobody: {"DEV": "x"}}})
    assert "localhost:1" in claimed["failures"]


def _device_ids(user: User, of: User) -> set[str]:
    queried = user.call("POST", "/keys/query", {"device_keys": {of.user_id: []}})
    assert queried["failures"] == {}, queried
    return set(queried["device_keys"].get(of.user_id, {}))


def _changed(user_id: str) -> Any:
    def check(body: dict[str, Any]) -> bool:
        return user_id in body.get("device_lists", {}).get("changed", [])

    return check


def test_device_changes_reach_room_mates_on_the_other_server(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    conversation = start_conversation(b, a)
    bob, alice = conversation.creator, conversation.joiner  # bob on b, alice on a
    upload_device_keys(alice)
    bob_sync = conversation.creator_sync
    bob_sync.wait_for(_changed(alice.user_id), what="alice's first device keys")
    # Bob's server now caches alice's list (they share a room) ...
    assert _device_ids(bob, alice) == {alice.device_id}

    # ... and keeps it current from alice's server's updates.
    phone = login_new_device(a, alice)
    upload_device_keys(phone)
    bob_sync.wait_for(_changed(alice.user_id), what="alice's new device")
    assert _device_ids(bob, alice) == {alice.device_id, phone.device_id}

    phone.call("POST", "/logout", {})
    bob_sync.wait_for(_changed(alice.user_id), what="alice's device deleted")
    assert _device_ids(bob, alice) == {alice.device_id}

    keys = upload_cross_signing_keys(alice)
    bob_sync.wait_for(_changed(alice.user_id), what="alice's cross-signing keys")
    queried = bob.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert queried["master_keys"][alice.user_id] == keys["master_key"]
    assert queried["self_signing_keys"][alice.user_id] == keys["self_signing_key"]


def test_to_device_messages_reach_devices_on_the_other_server_once(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    alice = new_user(a, "alice")
    bob = new_user(b, "bob")
    bob_phone = login_new_device(b, bob)
    watchers = {device.device_id: SyncWatcher(device) for device in (bob, bob_phone)}
    for watcher in watchers.values():
        watcher.catch_up()
    messages = {
        "messages": {
            bob.user_id: {
                bob.device_id: {"secret": "for the laptop"},
                "*": {"secret": "for every device"},
            }
        }
    }
    for _ in range(2):  # a retried request sends nothing more
        alice.call("PUT", "/sendToDevice/m.test.secret/txn1", messages)

    def got(device: User) -> list[dict[str, Any]]:
        return watchers[device.device_id].wait_for(
            lambda body: body.get("to_device", {}).get("events"),
            what="the to-device message",
        )

    laptop, phone = got(bob), got(bob_phone)
    assert [(e["sender"], e["type"], e["content"]) for e in laptop] == [
        (alice.user_id, "m.test.secret", {"secret": "for the laptop"})
    ]
    assert [e["content"] for e in phone] == [{"secret": "for every device"}]
    # Nothing else arrives: the retry sent nothing, and the EDU was queued once.
    alice.call(
        "PUT",
        "/sendToDevice/m.test.secret/txn2",
        {"messages": {bob.user_id: {bob.device_id: {"n": 2}}}},
    )
    after = got(bob)
    assert [e["content"] for e in after] == [{"n": 2}]


def test_stream_id_in_user_devices_is_json_integer(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    alice = new_user(a, "alice")
    response = signed(servers, b, a, "GET", user_devices_path(alice.user_id))
    body = json.loads(response.body)
    assert body == {"user_id": alice.user_id, "stream_id": 0, "devices": []}


def send_edus(
    servers: ServerPair,
    origin: FederatedServer,
    destination: FederatedServer,
    *edus: dict[str, Any],
) -> None:
    """A transaction of ``edus`` from ``origin`` (signed with its real key)."""
    body = {"origin": origin.server_name, "origin_server_ts": 0, "pdus": [], "edus": list(edus)}
    txn = f"h10-{next(_transactions)}"
    response = signed(servers, origin, destination, "PUT", f"{V1}/send/{txn}", body)
    assert response.status == 200, response.body


_transactions = itertools.count(int(time.time() * 1000))


def _update(
    user: User, device_id: str, stream_id: int, prev_id: list[int], **extra: Any
) -> dict[str, Any]:
    content = {
        "user_id": user.user_id,
        "device_id": device_id,
        "stream_id": stream_id,
        "prev_id": prev_id,
        **extra,
    }
    return {"edu_type": "m.device_list_update", "content": content}


def _fake_keys(user: User, device_id: str) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "device_id": device_id,
        "algorithms": ["m.megolm.v1.aes-sha2"],
        "keys": {f"ed25519:{device_id}": "fake"},
        "signatures": {},
    }


def test_updates_apply_on_top_of_the_cache_and_a_gap_makes_it_fetch_again(
    servers: ServerPair,
) -> None:
    a, b = servers.ours, servers.other
    conversation = start_conversation(a, b)
    alice, bob = conversation.creator, conversation.joiner  # alice on a, bob on b
    upload_device_keys(bob)
    assert _device_ids(alice, bob) == {bob.device_id}  # a now caches bob's list
    stream_id = signed(servers, a, b, "GET", user_devices_path(bob.user_id)).json()["stream_id"]
    alice_sync = conversation.creator_sync
    alice_sync.catch_up()

    # An update that follows the cached list is applied (and the cache is what
    # answers: b itself never heard of this device).
    keys = _fake_keys(bob, "EDUDEVICE")
    send_edus(servers, b, a, _update(bob, "EDUDEVICE", stream_id + 1, [stream_id], keys=keys))
    alice_sync.wait_for(_changed(bob.user_id), what="bob's update")
    assert _device_ids(alice, bob) == {bob.device_id, "EDUDEVICE"}

    # A retried update changes nothing; one that is not bob's server's is ignored.
    send_edus(servers, b, a, _update(bob, "EDUDEVICE", stream_id + 1, [stream_id], deleted=True))
    carol = new_user(a, "carol")
    send_edus(servers, b, a, _update(carol, "X", 1, []))
    assert _device_ids(alice, bob) == {bob.device_id, "EDUDEVICE"}

    # An update after one we missed: the list is fetched again from bob's server,
    # which knows nothing of either made-up device.
    gap = _update(bob, "OTHER", stream_id + 50, [stream_id + 49], keys=_fake_keys(bob, "OTHER"))
    send_edus(servers, b, a, gap)
    alice_sync.wait_for(_changed(bob.user_id), what="bob's update after a gap")
    deadline = time.monotonic() + 30
    while _device_ids(alice, bob) != {bob.device_id}:
        assert time.monotonic() < deadline, _device_ids(alice, bob)
        time.sleep(0.2)


def test_to_device_messages_from_a_server_for_another_servers_sender_are_dropped(
    servers: ServerPair,
) -> None:
    a, b = servers.ours, servers.other
    alice = new_user(a, "alice")
    watcher = SyncWatcher(alice)
    watcher.catch_up()
    forged = {
        "sender": a.user_id("mallory"),  # not a user of b, which sends it
        "type": "m.test",
        "message_id": "forged1",
        "messages": {alice.user_id: {alice.device_id: {"forged": True}}},
    }
    genuine = {**forged, "sender": b.user_id("bob"), "message_id": "genuine1"}
    send_edus(
        servers,
        b,
        a,
        {"edu_type": "m.direct_to_device", "content": forged},
        {"edu_type": "m.direct_to_device", "content": genuine},
        {"edu_type": "m.direct_to_device", "content": genuine},  # a duplicate
    )
    events = watcher.wait_for(
        lambda body: body.get("to_device", {}).get("events"), what="the to-device message"
    )
    assert [e["sender"] for e in events] == [b.user_id("bob")]


def test_a_local_user_signs_a_remote_users_master_key(servers: ServerPair) -> None:
    a, b = servers.ours, servers.other
    alice = new_user(a, "alice")
    bob = new_user(b, "bob")
    mine = upload_cross_signing_keys(alice, user_signing=True)
    bobs = upload_cross_signing_keys(bob)
    signer = mine["user_signer"]
    signature = sign_json(dict(bobs["master_key"]), alice.user_id, signer)
    result = alice.call(
        "POST", "/keys/signatures/upload", {bob.user_id: {signer_key(bobs): signature}}
    )
    assert result["failures"] == {}, result
    queried = alice.call("POST", "/keys/query", {"device_keys": {bob.user_id: []}})
    assert (
        queried["master_keys"][bob.user_id]["signatures"][alice.user_id]
        == (signature["signatures"][alice.user_id])
    )
    # Only the signer sees it.
    carol = new_user(a, "carol")
    theirs = carol.call("POST", "/keys/query", {"device_keys": {bob.user_id: []}})
    assert alice.user_id not in theirs["master_keys"][bob.user_id].get("signatures", {})


def signer_key(keys: dict[str, Any]) -> str:
    """The master key's ID without ``ed25519:`` (how ``/keys/signatures/upload`` names it)."""
    [key_id] = keys["master_key"]["keys"]
    return str(key_id).removeprefix("ed25519:")


def test_a_cached_list_is_fetched_again_after_a_time_of_not_sharing_a_room(
    servers: ServerPair,
) -> None:
    a, b = servers.ours, servers.other
    alice, bob = new_user(a, "alice"), new_user(b, "bob")
    room_id = create_room(alice, preset="public_chat")
    alice_sync = SyncWatcher(alice)
    join(bob, room_id, [a.server_name])
    alice_sync.wait_for_event(room_id, lambda e: is_membership(e, bob.user_id, "join"))
    upload_device_keys(bob)
    assert _device_ids(alice, bob) == {bob.device_id}  # cached by alice's server

    bob.call("POST", room_path(room_id, "leave"), {})
    alice_sync.wait_for_event(room_id, lambda e: is_membership(e, bob.user_id, "leave"))
    # Sharing no room, bob's server tells alice's nothing of his new device ...
    phone = login_new_device(b, bob)
    upload_device_keys(phone)
    join(bob, room_id, [a.server_name])
    alice_sync.wait_for_event(room_id, lambda e: is_membership(e, bob.user_id, "join"))
    # ... but his join made alice's server fetch his list again.
    deadline = time.monotonic() + 30
    while _device_ids(alice, bob) != {bob.device_id, phone.device_id}:
        assert time.monotonic() < deadline, _device_ids(alice, bob)
        time.sleep(0.2)
