"""matrix-nio, a third-party client, driving the room features of the real server.

Each test runs one scenario of tests/interop/nio_room_scenarios.py in its own process
against a fresh server on both engines, and asserts on what nio parsed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.matrix import running_server
from tests.support.server_process import REPO_ROOT, ServerProcess

OK = {"http_status": 200}
FORBIDDEN = {"errcode": "M_FORBIDDEN", "retry_after_ms": None, "http_status": 403}


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config) as process:
        yield process


def run_scenario(name: str, server: ServerProcess) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.interop.nio_room_scenarios", name, server.base_url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr + "\n" + server.log()
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def succeeded(response_type: str) -> dict[str, Any]:
    return {"type": response_type, **OK}


def refused(error_type: str) -> dict[str, Any]:
    return {"type": error_type, **FORBIDDEN}


def test_nio_private_group_invite_join_and_conversation(server: ServerProcess) -> None:
    result = run_scenario("private_group", server)
    alice, bob = result["alice"], result["bob"]
    assert result["invite"] == succeeded("RoomInviteResponse")
    assert result["bob_invited"] is True
    assert result["bob_invite_view"] == {"inviter": alice, "name": "Project X"}
    assert {"m.room.member", "m.room.name"} <= set(result["bob_invite_state_types"])
    assert result["join"] == succeeded("JoinResponse")
    assert result["bob_still_invited_after_join"] is False

    assert result["alice_send"] == succeeded("RoomSendResponse")
    assert result["bob_send"] == succeeded("RoomSendResponse")
    conversation = [(alice, "hello bob"), (bob, "hello alice")]
    for seen in (result["alice_saw"], result["bob_saw"]):
        assert [(m["sender"], m["body"]) for m in seen] == conversation
    assert [m["event_id"] for m in result["alice_saw"]] == [
        m["event_id"] for m in result["bob_saw"]
    ]

    for view in (result["alice_view"], result["bob_view"]):
        assert view["name"] == "Project X"
        assert view["display_name"] == "Project X"
        assert view["topic"] == "Plans for X"
        assert view["join_rule"] == "invite"
        assert view["history_visibility"] == "shared"
        assert view["members"] == sorted([alice, bob])
        assert view["invited"] == []
        assert view["member_names"] == {alice: "Alice A", bob: "Bob B"}
        assert view["member_count"] == 2
    assert result["bob_level_seen_by_alice"] == 0

    assert result["rename_bob"] == succeeded("ProfileSetDisplayNameResponse")
    assert result["alice_sees_bob_renamed"] == "Bobby Tables"

    # Unnamed rooms: nio names them after the other member.
    assert result["unnamed_alice_view"]["display_name"] == "Bobby Tables"
    assert result["unnamed_bob_view"]["display_name"] == "Alice A"

    # spec: client-server-api /sync, Joined Room `summary` (RoomSummary): the member
    # counts are required whenever they changed since the last sync (so on the first
    # sync that shows the room), and m.heroes whenever the room has no name or alias.
    for view in (result["alice_view"], result["bob_view"]):
        assert view["summary"]["joined"] == 2
        assert view["summary"]["invited"] == 0
    assert result["unnamed_alice_view"]["summary"] == {"joined": 2, "invited": 0, "heroes": [bob]}
    assert result["unnamed_bob_view"]["summary"] == {"joined": 2, "invited": 0, "heroes": [alice]}


def test_nio_muted_member_cannot_send_until_unmuted(server: ServerProcess) -> None:
    result = run_scenario("muting", server)
    assert result["before_mute"] == succeeded("RoomSendResponse")
    assert result["events_default"] == 0
    assert result["mute"] == succeeded("RoomPutStateResponse")
    assert result["bob_sees_own_level"] == -1
    assert result["nio_says_bob_can_send"] is False
    assert result["while_muted"] == refused("RoomSendError")
    assert result["unmute"] == succeeded("RoomPutStateResponse")
    assert result["nio_says_bob_can_send_after"] is True
    assert result["after_unmute"] == succeeded("RoomSendResponse")
    assert result["alice_saw_from_bob"] == ["before mute", "after unmute"]


def test_nio_only_admins_rename_the_room(server: ServerProcess) -> None:
    result = run_scenario("only_admins_rename", server)
    assert result["bob_sees_before"] == {"name": "Old name", "display_name": "Old name"}
    assert result["bob_rename"] == refused("RoomPutStateError")
    assert result["alice_rename"] == succeeded("RoomPutStateResponse")
    assert result["bob_sees_after"] == {"name": "New name", "display_name": "New name"}
    assert result["bob_fetches_name"] == {"name": "New name"}


def by_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["source"]["event_id"]: e for e in events}


def test_nio_sees_another_members_edit_and_redaction(server: ServerProcess) -> None:
    result = run_scenario("edits_and_redactions", server)
    original_id, edit_id = result["original_id"], result["edit_id"]
    doomed_id, redaction_id = result["doomed_id"], result["redaction_id"]

    synced = by_id(result["bob_sync_events"])
    assert synced[original_id]["source"]["content"]["body"] == "I like cake"
    edit = synced[edit_id]["source"]
    assert edit["content"]["m.new_content"] == {
        "msgtype": "m.text",
        "body": "I like chocolate cake",
    }
    assert edit["content"]["m.relates_to"] == {"rel_type": "m.replace", "event_id": original_id}
    assert synced[redaction_id]["class"] == "RedactionEvent"
    assert result["bob_sync_redactions"] == [{"redacts": doomed_id, "reason": "oops"}]

    def assert_bundles_the_edit(original: dict[str, Any]) -> None:
        # spec: client-server-api/modules/event_replacements.md#server-side-aggregation-of-mreplace-relationships
        assert original["content"]["body"] == "I like cake"  # never replaced by the server
        bundled = original["unsigned"]["m.relations"]["m.replace"]
        assert bundled["event_id"] == edit_id
        assert bundled["sender"] == edit["sender"]
        assert bundled["content"] == edit["content"]

    def assert_redacted(event: dict[str, Any]) -> None:
        assert event["class"] == result["redacted_class"]
        assert event["source"]["content"] == {}
        because = event["source"]["unsigned"]["redacted_because"]
        assert because["event_id"] == redaction_id
        assert because["type"] == "m.room.redaction"

    # /messages, newest first: the redaction, the redacted message, the edit, the original.
    messages = result["messages"]
    assert [m["source"]["event_id"] for m in messages[:4]] == [
        redaction_id,
        doomed_id,
        edit_id,
        original_id,
    ]
    paged = by_id(messages)
    assert_bundles_the_edit(paged[original_id]["source"])
    assert "m.relations" not in paged[edit_id]["source"].get("unsigned", {})
    assert_redacted(paged[doomed_id])
    assert paged[redaction_id]["source"]["redacts"] == doomed_id

    # A limited initial sync bundles aggregations too, and serves the message redacted.
    limited = result["limited_sync"]
    assert limited["limited"] is True
    initial = by_id(limited["events"])
    assert_bundles_the_edit(initial[original_id]["source"])
    assert_redacted(initial[doomed_id])

    # GET /event: the original with its bundle, the redacted message stripped.
    assert_bundles_the_edit(result["get_original"])
    assert_redacted(result["get_doomed"])


def test_nio_paginates_sixty_messages_backwards_in_pages_of_twenty(
    server: ServerProcess,
) -> None:
    result = run_scenario("pagination", server)
    assert result["sync_limited"] is True
    assert result["has_prev_batch"] is True
    timeline = result["sync_timeline"]
    pages = result["pages"]
    assert all(len(page["events"]) <= 20 for page in pages)
    # Each page starts where the previous one ended.
    for before, after in zip(pages, pages[1:], strict=False):
        assert after["start"] == before["end"]
    # The history ends: no `end` token (possibly after an empty last chunk).
    assert pages[-1]["end"] is None
    assert all(page["end"] is not None for page in pages[:-1])

    history = [e for page in reversed(pages) for e in reversed(page["events"])] + timeline
    event_ids = [e["event_id"] for e in history]
    assert len(event_ids) == len(set(event_ids)), "an event came back twice"
    bodies = [e["content"]["body"] for e in history if e["type"] == "m.room.message"]
    assert bodies == [f"message {i}" for i in range(60)]
    assert history[0]["type"] == "m.room.create"
    # Full pages until the history runs out.
    assert [len(page["events"]) for page in pages[:2]] == [20, 20]


def test_nio_long_poll_wakes_up_for_a_new_message(server: ServerProcess) -> None:
    result = run_scenario("long_poll_wakes_up", server)
    assert result["send"] == succeeded("RoomSendResponse")
    assert result["returned"] is True
    assert result["since_advanced"] is True
    assert [(m["sender"], m["body"]) for m in result["message"]] == [(result["alice"], "wake up")]


def test_nio_is_rate_limited_and_told_when_to_retry(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(
        tmp_path, database_config, rc_message={"per_second": 0.5, "burst_count": 3}
    ) as tight:
        result = run_scenario("rate_limited", tight)
    sends = result["sends"]
    limited = [s for s in sends if s["type"] == "RoomSendError"]
    assert limited, sends
    for refusal in limited:
        assert refusal["errcode"] == "M_LIMIT_EXCEEDED"
        assert refusal["http_status"] == 429
        # One message per two seconds: never more than that to wait.
        assert 0 < refusal["retry_after_ms"] <= 2000
    assert sends[0] == succeeded("RoomSendResponse")
    assert result["after_waiting"] == succeeded("RoomSendResponse")


def test_nio_victim_sees_kick_and_ban(server: ServerProcess) -> None:
    result = run_scenario("kick_and_ban", server)
    alice = result["alice"]
    assert result["join"] == succeeded("JoinResponse")
    assert result["kick"] == succeeded("RoomKickResponse")
    assert result["after_kick"] == {
        "in_leave": True,
        "in_join": False,
        "membership": [{"membership": "leave", "sender": alice, "reason": "be nice"}],
    }
    assert result["alice_sees_members_after_kick"] == [alice]
    assert result["rejoin_after_kick"] == succeeded("JoinResponse")

    assert result["ban"] == succeeded("RoomBanResponse")
    assert result["after_ban"] == {
        "in_leave": True,
        "in_join": False,
        "membership": [{"membership": "ban", "sender": alice, "reason": "enough"}],
    }
    assert result["rejoin_after_ban"] == refused("JoinError")
    assert result["bob_sync_after_ban"] == {"in_join": False, "bodies": []}
    assert result["invite_after_ban"] == refused("RoomInviteError")
    assert result["unban"] == succeeded("RoomUnbanResponse")
    assert result["rejoin_after_unban"] == succeeded("JoinResponse")


def test_nio_sees_typing_and_read_receipts(server: ServerProcess) -> None:
    result = run_scenario("typing_and_receipts", server)
    alice = result["alice"]
    assert result["typing_on"] == succeeded("RoomTypingResponse")
    assert result["bob_sees_typing"] == [alice]
    assert result["receipt"] == succeeded("UpdateReceiptMarkerResponse")
    assert result["bob_sees_receipt"] == {
        "event_id": result["message_id"],
        "receipt_type": "m.read",
        "thread_id": "main",
    }
    assert result["typing_off"] == succeeded("RoomTypingResponse")
    assert result["bob_sees_typing_after_stop"] == []
    assert result["read_markers"] == succeeded("RoomReadMarkersResponse")
    assert result["alice_sees_receipt"] == {
        "event_id": result["reply_id"],
        "receipt_type": "m.read",
        "thread_id": None,
    }
    receipts = [r for event in result["ephemeral"]["bob"] for r in event.get("receipts", [])]
    assert {
        "event_id": result["message_id"],
        "receipt_type": "m.read",
        "user_id": alice,
        "thread_id": "main",
        "has_ts": True,
    } in receipts
