"""matrix-js-sdk (the library Element is built on), a real client, against the real server.

Each test registers its users over HTTP, then runs one scenario of
tests/interop/js/scenarios.mjs under Node against a fresh server on both engines, and
asserts here on what the SDK observed and on every HTTP request it made.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.js_support import ScenarioRun, route, run_scenario
from tests.support.database_search import database_contents, locations_of
from tests.support.matrix import PASSWORD, call, register, running_server
from tests.support.server_process import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.slow

#: Optional endpoints js-sdk probes at startup and does without when the server answers
#: 404 M_UNRECOGNIZED (the spec's answer for an endpoint it does not serve); the SDK
#: caches that answer.  MSC4143 (unstable): RTC transports for MatrixRTC calls.
TOLERATED_PROBES = {
    ("GET", "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports", 404),
}


@pytest.fixture
def open_server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    """Registration open (dummy stage), relaxed rate limits; as in tests/api/client.

    Private rooms stay unencrypted here: these scenarios run js-sdk without crypto, and
    it refuses to send into an encrypted room.
    """
    with running_server(
        tmp_path, database_config, encryption_enabled_by_default_for_room_type="off"
    ) as server:
        yield server


@pytest.fixture
def e2ee_server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    """As ``open_server``, with the default room encryption settings."""
    with running_server(tmp_path, database_config) as server:
        yield server


def unexpected_refusals(run: ScenarioRun) -> list[tuple[str, str, str, int]]:
    """Requests that failed, other than the probes the SDK is built to do without."""
    return [r for r in run.refusals() if r[1:] not in TOLERATED_PROBES]


def test_js_sdk_client_starts_and_syncs(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")
    run = run_scenario("starts_and_syncs", open_server, {"alice": alice})
    result = run.succeeded()

    assert unexpected_refusals(run) == [], run.diagnostics()
    assert all(r["body"].find("M_UNRECOGNIZED") >= 0 for r in run.failed_requests)
    assert result["sync_states"][0] == "PREPARED"
    assert "ERROR" not in result["sync_states"]
    assert result["sync_state"] == "SYNCING"
    assert result["initial_sync_complete"] is True
    assert result["user_id"] == alice["user_id"]
    assert result["device_id"] == alice["device_id"]
    # setAccountData resolves only once the change comes back through the long poll.
    assert result["account_data"] == {"hello": "js-sdk"}


def test_js_sdk_private_group_conversation(open_server: ServerProcess) -> None:
    users = {"alice": register(open_server, "alice"), "bob": register(open_server, "bob")}
    run = run_scenario("private_group_conversation", open_server, users)
    result = run.succeeded()
    alice, bob = users["alice"]["user_id"], users["bob"]["user_id"]

    assert unexpected_refusals(run) == [], run.diagnostics()

    # The invite reaches bob through sync, with the room's name from the invite state.
    assert result["invite"] == {
        "membership": "invite",
        "inviter": alice,
        "my_membership": "invite",
        "room_name": "Project X",
    }
    assert result["bob_membership"] == "join"
    assert result["alice_sees_bob_as"] == "join"
    assert result["room_name_for_bob"] == "Project X"
    assert result["join_rule_for_bob"] == "invite"

    # alice's message reaches bob's timeline.
    assert result["received"] == {
        "event_id": result["hello_event_id"],
        "sender": alice,
        "type": "m.room.message",
        "body": "hello bob",
    }

    # The edit is applied to the original in bob's client.
    edit = result["edit"]
    assert edit["replacing_event_id"] == edit["edit_event_id"]
    assert edit["displayed_body"] == "hello bob, edited"
    assert edit["original_body"] == "hello bob"

    # The redaction empties the message in bob's client.
    redaction = result["redaction"]
    assert redaction["before"]["body"] == "this one goes away"
    assert redaction["is_redacted"] is True
    assert redaction["content_after"] == {}
    assert redaction["redacted_because"] == redaction["redaction_event_id"]

    # bob's read receipt reaches alice's client from the server.
    receipt = result["receipt"]
    assert receipt["bob_receipt_from_server"] == {
        "event_id": result["read_me_event_id"],
        "has_ts": True,
    }
    assert receipt["bob_read_up_to"] == result["read_me_event_id"]
    assert bob in receipt["users_read_up_to"]
    assert {"user_id": bob, "type": "m.read"} in receipt["receipts_for_event"]

    # bob's typing starts and stops in alice's client.
    assert result["typing_started"] == {"user_id": bob, "typing": True}
    assert result["typing_stopped"] == {"user_id": bob, "typing": False}


def test_js_sdk_muted_member_send_is_refused(open_server: ServerProcess) -> None:
    users = {"alice": register(open_server, "alice"), "bob": register(open_server, "bob")}
    run = run_scenario("muted_member_send_is_refused", open_server, users)
    result = run.succeeded()
    forbidden = {"rejected": True, "errcode": "M_FORBIDDEN", "http_status": 403}

    # bob's client learns of the new power levels and knows he may no longer write.
    assert result["bob_could_send_before"] is True
    assert result["bob_power_level"] < result["events_default"]
    assert result["bob_may_send_after"] is False

    assert result["send"] == forbidden
    assert result["refused_message_status"] == "not_sent"
    assert result["rename"] == forbidden
    assert unexpected_refusals(run) == [
        ("bob", "PUT", "/_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}", 403),
        ("bob", "PUT", "/_matrix/client/v3/rooms/{roomId}/state/m.room.name/", 403),
    ], run.diagnostics()

    # Nothing bob tried reached the room.
    assert result["room_name_for_alice"] == "Town square"
    assert result["room_name_for_bob"] == "Town square"
    assert result["bob_events_seen_by_alice"] == []


#: Answers the Rust crypto expects when the user has set nothing up: no key backup
#: (GET /room_keys/version is 404 M_NOT_FOUND when there is none, spec:
#: client-server-api/modules/server_side_key_backups.md).
TOLERATED_CRYPTO_PROBES = {
    ("GET", "/_matrix/client/v3/room_keys/version", 404),
}


def test_js_sdk_encrypted_conversation_and_new_device(
    e2ee_server: ServerProcess, database_config: dict[str, Any]
) -> None:
    """Two js-sdk clients with Rust crypto (Olm/Megolm) talk through the server, which only
    relays ciphertext; a second device of bob appears and alice's client shares the key with it.
    Afterwards none of the plaintexts is anywhere in the database.
    """
    users = {"alice": register(e2ee_server, "alice"), "bob": register(e2ee_server, "bob")}
    run = run_scenario(
        "encrypted_conversation_and_new_device",
        e2ee_server,
        users,
        logins={"bob2": {"user": "bob", "password": PASSWORD}},
        deadline_s=90,
    )
    result = run.succeeded()
    alice, bob = users["alice"]["user_id"], users["bob"]["user_id"]
    alice_device, bob_device = users["alice"]["device_id"], users["bob"]["device_id"]
    bob2_device = result["bob2_device"]

    tolerated = TOLERATED_PROBES | TOLERATED_CRYPTO_PROBES
    assert [r for r in run.refusals() if r[1:] not in tolerated] == [], run.diagnostics()

    # js-sdk's default: room keys go to unverified devices too (nobody verifies here).
    assert result["crypto"]["alice_blacklists_unverified"] is False
    assert result["crypto"]["bob_blacklists_unverified"] is False
    assert result["crypto"]["bob2_blacklists_unverified"] is False
    assert result["encryption_enabled"] == {"alice": True, "bob": True}

    def decrypted(sender: str, body: str) -> dict[str, Any]:
        return {
            "sender": sender,
            "wire_type": "m.room.encrypted",
            "algorithm": "m.megolm.v1.aes-sha2",
            "is_encrypted": True,
            "type": "m.room.message",
            "body": body,
            "decryption_failure": False,
        }

    def without_id(seen: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in seen.items() if k != "event_id"}

    to_bob, to_alice, to_both = result["to_bob"], result["to_alice"], result["to_both_devices"]
    assert without_id(to_bob["seen"]["bob"]) == decrypted(alice, "the eagle lands at dawn")
    assert without_id(to_alice["seen"]["alice"]) == decrypted(bob, "copy that, dawn it is")

    # bob's new device: seen by alice's client once its keys are up, and given the room key.
    assert result["bob2_user"] == bob
    assert bob2_device not in (bob_device, alice_device)
    assert result["bob_devices_known_to_alice_before"] == [bob_device]
    assert result["bob_devices_known_to_alice_after"] == sorted([bob_device, bob2_device])
    for device in ("bob", "bob2"):
        assert without_id(to_both["seen"][device]) == decrypted(alice, "new phone, same plan")
    # alice's client asked the server again once the new device existed: it was told of
    # the change through sync, as it had no other reason to ask.
    calls = [(r["client"], r["method"], route(r["path"])) for r in run.requests]
    bob2_login = calls.index(("bob2", "POST", "/_matrix/client/v3/login"))
    assert ("alice", "POST", "/_matrix/client/v3/keys/query") in calls[bob2_login:]
    # The room key reached the devices as to-device messages.
    assert any(
        c[0] == "alice" and c[2].startswith("/_matrix/client/v3/sendToDevice/m.room.encrypted/")
        for c in calls
    )

    # What the server stores and serves: ciphertext only, none of the plaintext.
    messages = call(
        e2ee_server,
        "GET",
        f"/rooms/{result['room_id']}/messages?dir=b&limit=100",
        token=users["alice"]["access_token"],
    )
    assert messages.status == 200, messages.body
    events = messages.json()["chunk"]
    sent_ids = {to_bob["event_id"], to_alice["event_id"], to_both["event_id"]}
    by_id = {event["event_id"]: event for event in events}
    assert sent_ids <= by_id.keys()
    for event_id in sent_ids:
        event = by_id[event_id]
        assert event["type"] == "m.room.encrypted"
        assert event["content"]["algorithm"] == "m.megolm.v1.aes-sha2"
        assert isinstance(event["content"]["ciphertext"], str)
        assert "body" not in event["content"]
    assert not [event for event in events if event["type"] == "m.room.message"]
    for word in (b"eagle", b"dawn", b"new phone"):
        assert word not in messages.body

    # Nor anywhere in the database; a message of an unencrypted room is (so the search
    # can fail).
    control_room = call(
        e2ee_server,
        "POST",
        "/createRoom",
        token=users["alice"]["access_token"],
        body={"preset": "public_chat"},
    ).json()["room_id"]
    control = f"plaintext control {secrets.token_hex(8)}"
    sent = call(
        e2ee_server,
        "PUT",
        f"/rooms/{control_room}/send/m.room.message/control",
        token=users["alice"]["access_token"],
        body={"msgtype": "m.text", "body": control},
    )
    assert sent.status == 200, sent.body
    haystacks = list(database_contents(database_config))
    for plaintext in ("the eagle lands at dawn", "copy that, dawn it is", "new phone, same plan"):
        assert locations_of(plaintext, haystacks) == [], plaintext
    assert locations_of(control, haystacks) != []


def test_js_sdk_cross_signing_identity_reaches_the_other_user(e2ee_server: ServerProcess) -> None:
    """bob's js-sdk sets up cross-signing; alice's client, tracking bob's keys since they share
    an encrypted room, learns of his identity and sees his device signed by it."""
    users = {"alice": register(e2ee_server, "alice"), "bob": register(e2ee_server, "bob")}
    run = run_scenario("cross_signing_identity_seen", e2ee_server, users)
    result = run.succeeded()

    tolerated = TOLERATED_PROBES | TOLERATED_CRYPTO_PROBES
    assert [r for r in run.refusals() if r[1:] not in tolerated] == [], run.diagnostics()
    assert result["hello_decrypted_by_bob"] == "before cross-signing"
    assert result["before"] == {"alice_sees_bob_keys": False, "bob_device_signed_by_owner": False}

    # The first upload of cross-signing keys goes through without interactive auth.
    assert result["auth_calls"] == 1
    assert result["bob_cross_signing"] == {
        "public_keys_on_device": True,
        "private_keys_cached": {"masterKey": True, "selfSigningKey": True, "userSigningKey": True},
        "ready": True,
        "own_device_signed_by_owner": True,
    }
    # alice sees bob's identity and his device's signature; she has verified nobody.
    assert result["alice_sees"] == {
        "bob_has_keys": True,
        "bob_cross_signing_verified": False,
        "bob_device_signed_by_owner": True,
        "bob_device_cross_signing_verified": False,
    }
    calls = [(r["client"], r["method"], route(r["path"])) for r in run.requests]
    keys_up = calls.index(("bob", "POST", "/_matrix/client/v3/keys/device_signing/upload"))
    signed = calls.index(("bob", "POST", "/_matrix/client/v3/keys/signatures/upload"))
    assert keys_up < signed
    assert ("alice", "POST", "/_matrix/client/v3/keys/query") in calls[keys_up:]


def test_js_sdk_and_nio_exchange_encrypted_messages(e2ee_server: ServerProcess) -> None:
    """js-sdk (Rust crypto) and matrix-nio (vodozemac) decrypt each other's messages: nio
    runs in its own process meanwhile (tests/interop/nio_js_peer.py), meeting alice in the room.
    """
    alice = register(e2ee_server, "alice")
    nio_user = register(e2ee_server, "niopeer")
    nio_input = {
        "base_url": e2ee_server.base_url,
        "user_id": nio_user["user_id"],
        "device_id": nio_user["device_id"],
        "access_token": nio_user["access_token"],
        "peer": alice["user_id"],
        "deadline_s": 60,
    }
    with subprocess.Popen(
        [sys.executable, "-m", "tests.interop.nio_js_peer", json.dumps(nio_input)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as nio:
        try:
            run = run_scenario(
                "js_sdk_and_nio_encrypted", e2ee_server, {"alice": alice, "nio": nio_user}
            )
        except BaseException:
            nio.kill()
            raise
        if not run.ok:
            # nio would wait for alice until its own deadline.
            nio.kill()
        nio_stdout, nio_stderr = nio.communicate(timeout=90)
    nio_lines = nio_stdout.strip().splitlines()
    nio_result: dict[str, Any] = json.loads(nio_lines[-1]) if nio_lines else {}
    nio_report = f"nio reported: {nio_result}\n--- nio stderr ---\n{nio_stderr[-4000:]}"
    if not run.ok:
        pytest.fail(f"{run.diagnostics()}\n{nio_report}", pytrace=False)
    assert nio_result.get("ok"), f"{nio_report}\n{run.diagnostics()}"
    result = run.succeeded()

    tolerated = TOLERATED_PROBES | TOLERATED_CRYPTO_PROBES
    assert [r for r in run.refusals() if r[1:] not in tolerated] == [], run.diagnostics()
    assert result["alice_blacklists_unverified"] is False
    assert result["nio_devices_known_to_alice"] == [nio_user["device_id"]]

    # nio decrypted alice's message...
    assert nio_result["room_id"] == result["room_id"]
    assert nio_result["room_encrypted"] is True
    assert nio_result["received"] == {
        "event_id": result["hello_event_id"],
        "sender": alice["user_id"],
        "body": "hello nio, from js-sdk",
        "decrypted": True,
    }
    # ...and alice's js-sdk decrypted nio's reply.
    assert result["reply"] == {
        "event_id": nio_result["reply_event_id"],
        "sender": nio_user["user_id"],
        "wire_type": "m.room.encrypted",
        "algorithm": "m.megolm.v1.aes-sha2",
        "is_encrypted": True,
        "type": "m.room.message",
        "body": "hello js-sdk, from nio",
        "decryption_failure": False,
    }
