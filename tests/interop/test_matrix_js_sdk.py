"""matrix-js-sdk (the library Element is built on), a real client, against the real server.

Each test registers its users over HTTP, then runs one scenario of
tests/interop/js/scenarios.mjs under Node against a fresh server on both engines, and
asserts here on what the SDK observed and on every HTTP request it made.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.js_support import ScenarioRun, run_scenario
from tests.support.matrix import register, running_server
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.slow

#: Optional endpoints js-sdk probes at startup and does without when the server answers
#: 404 M_UNRECOGNIZED (the spec's answer for an endpoint it does not serve); the SDK
#: caches that answer.  MSC4143 (unstable): RTC transports for MatrixRTC calls.
TOLERATED_PROBES = {
    ("GET", "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports", 404),
}


@pytest.fixture
def open_server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    """Registration open (dummy stage), relaxed rate limits; as in tests/api/client."""
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
