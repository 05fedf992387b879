"""The web client in headless Chromium: two people talking (issue 15's browser tests).

One real server per module serving web-client/dist; alice and bob each sign in through
the login form in their own browser profile.  The scenarios are in
web-client/tests/e2e/scenarios/; here the server's side of what they did is checked too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.matrix import call
from tests.support.server_process import ServerProcess
from tests.webclient.browser_support import (
    browser_user,
    run_browser_scenario,
)

pytestmark = pytest.mark.slow

Users = dict[str, dict[str, str]]


def room_events(server: ServerProcess, token: str, room_id: str) -> list[dict[str, object]]:
    response = call(server, "GET", f"/rooms/{room_id}/messages?dir=f&limit=100", token)
    assert response.status == 200, response.body
    chunk: list[dict[str, object]] = response.json()["chunk"]
    return chunk


def test_two_people_chat_in_an_encrypted_room(
    server: ServerProcess, users: Users, tmp_path: Path
) -> None:
    result = run_browser_scenario("chat", server, users, tmp_path).succeeded()

    # The server relayed ciphertext only: one encrypted event from each of them.
    events = room_events(server, users["bob"]["access_token"], result["room_id"])
    messages = [e for e in events if e["type"] in ("m.room.encrypted", "m.room.message")]
    assert [(e["sender"], e["type"]) for e in messages] == [
        (users["alice"]["user_id"], "m.room.encrypted"),
        (users["bob"]["user_id"], "m.room.encrypted"),
    ]


TICKS = ["Sending", "Sent", "Delivered", "Seen"]


def test_ticks_go_sent_delivered_seen(server: ServerProcess, users: Users, tmp_path: Path) -> None:
    result = run_browser_scenario("ticks", server, users, tmp_path).succeeded()

    # Every name the status element took, recorded in the page as it changed: a part of
    # Sending → Sent → Delivered → Seen, in that order, with Sent, Delivered and Seen.
    sequence = result["sequence"]
    assert sequence == [tick for tick in TICKS if tick in sequence], sequence
    assert {"Sent", "Delivered", "Seen"} <= set(sequence), sequence


def state_content(
    server: ServerProcess, token: str, room_id: str, event_type: str
) -> dict[str, object] | None:
    response = call(server, "GET", f"/rooms/{room_id}/state/{event_type}/", token)
    if response.status == 404:
        return None
    assert response.status == 200, response.body
    content: dict[str, object] = response.json()
    return content


def test_new_private_rooms_and_dms_are_encrypted_by_default(
    server: ServerProcess, users: Users, tmp_path: Path
) -> None:
    result = run_browser_scenario("encryption_defaults", server, users, tmp_path).succeeded()

    # The server itself encrypts nothing here (encryption_enabled_by_default_for_room_type
    # is off): the encryption state is the app's doing, for the room and for the DM.
    token = users["alice"]["access_token"]
    for room_id in (result["room_id"], result["dm_id"]):
        encryption = state_content(server, token, room_id, "m.room.encryption")
        assert encryption is not None, room_id
        assert encryption["algorithm"] == "m.megolm.v1.aes-sha2"
    join_rules = state_content(server, token, result["room_id"], "m.room.join_rules")
    assert join_rules is not None and join_rules["join_rule"] == "invite"
    assert result["dm_id"] != result["room_id"]


def test_a_recorded_voice_message_reaches_the_other_side(
    server: ServerProcess, users: Users, tmp_path: Path
) -> None:
    result = run_browser_scenario("voice", server, users, tmp_path).succeeded()

    content = result["content"]
    assert content["msgtype"] == "m.audio"
    assert "org.matrix.msc3245.voice" in content
    assert content["url"].startswith("mxc://")
    assert result["audio"]["readyState"] >= 1


def test_sas_verification_and_key_backup(
    server: ServerProcess, users: Users, tmp_path: Path
) -> None:
    # A user of its own: cross-signing and a key backup would change what alice's other
    # scenarios see.  Three sessions, each with the crypto's start-up: a longer deadline.
    alice = browser_user(server, "alice-verify")
    result = run_browser_scenario(
        "verification", server, {"alice": alice}, tmp_path, deadline_s=240
    ).succeeded()

    assert len(result["emoji"]) == 7
    assert len(result["cross_signed_devices"]) >= 2
    assert result["backed_up_keys"] >= 1


def test_typing_indicator_shows_while_the_other_types(
    server: ServerProcess, users: Users, tmp_path: Path
) -> None:
    result = run_browser_scenario("typing", server, users, tmp_path).succeeded()

    assert "is typing" in result["indicator_text"]


def test_image_and_audio_are_sent_and_render(
    server: ServerProcess, users: Users, tmp_path: Path
) -> None:
    result = run_browser_scenario("media", server, users, tmp_path).succeeded()

    assert result["image"]["naturalWidth"] > 0
    assert result["audio"]["duration"] > 0
    sent = [(m["sender"], m["msgtype"]) for m in result["msgtypes"]]
    assert sent == [
        (users["alice"]["user_id"], "m.image"),
        (users["alice"]["user_id"], "m.audio"),
    ], result["msgtypes"]
    assert result["msgtypes"][0]["mimetype"] == "image/png"
    assert result["msgtypes"][1]["mimetype"] in ("audio/wav", "audio/x-wav", "audio/wave")
