"""matrix-nio, a third-party client, against the real server on both engines."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.database_search import database_contents, plaintext_forms
from tests.support.matrix import running_server
from tests.support.server_process import REPO_ROOT, ServerProcess


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config) as process:
        yield process


def run_scenario(name: str, server: ServerProcess, timeout: float = 60) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.interop.nio_scenarios", name, server.base_url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr + "\n" + server.log()
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_nio_registers_logs_in_and_logs_out_everywhere(server: ServerProcess) -> None:
    result = run_scenario("register_login_logout_all", server)
    assert result["registered_user_id"] == "@niouser:localhost"
    assert result["login_user_id"] == "@niouser:localhost"
    assert result["whoami"] == {
        "user_id": "@niouser:localhost",
        "device_id": result["login_device_id"],
    }
    assert result["logout_all"] is True
    assert result["after_logout"] == {"errcode": "M_UNKNOWN_TOKEN"}


def test_nio_lists_the_devices_of_two_logins(server: ServerProcess) -> None:
    result = run_scenario("two_devices", server)
    by_id = {d["device_id"]: d for d in result["devices"]}
    for device_id in result["login_devices"]:
        assert device_id in by_id
    names = {by_id[d]["display_name"] for d in result["login_devices"]}
    assert names == {"nio one", "nio two"}
    # The device that listed them has made a request, so it has been seen.
    assert any(d["last_seen_ip"] == "127.0.0.1" and d["has_last_seen_date"] for d in by_id.values())


def test_nio_uploads_queries_and_claims_olm_keys(server: ServerProcess) -> None:
    """nio's own Olm account and signature checks accept what the server serves.

    spec: client-server-api/modules/end_to_end_encryption.md
    """
    result = run_scenario("e2e_keys", server)
    assert result["should_upload"] is True
    assert result["uploaded_counts"] > 0
    assert result["sync_count"] == result["uploaded_counts"]
    assert result["should_upload_after"] is False
    assert result["queried_ed25519_matches"] is True
    assert result["queried_curve25519_matches"] is True
    assert result["display_name"] == "nioalice e2e"
    assert result["claimed"] == 1
    assert result["olm_session"] is True
    assert result["count_after_claim"] == result["uploaded_counts"] - 1


def test_nio_clients_exchange_encrypted_messages_and_a_new_device_gets_the_key(
    server: ServerProcess, database_config: dict[str, Any]
) -> None:
    """Real Olm/Megolm (nio's vodozemac) through the server, both ways, then to a new
    device of bob; afterwards no message's plaintext is anywhere in the database.

    spec: client-server-api/modules/end_to_end_encryption.md
    """
    result = run_scenario("e2ee_exchange", server, timeout=180)
    # The DM was encrypted by the server's default (invite); the public room not.
    assert result["encrypted"] == {"dm": True, "public": False}
    bodies = {s["label"]: s["body"] for s in result["secrets"]}
    expected = {
        "bob_got_alice": ("@e2alice:localhost", bodies["alice to bob"]),
        "alice_got_bob": ("@e2bob:localhost", bodies["bob to alice"]),
        "new_device_got_alice": ("@e2alice:localhost", bodies["alice to both devices"]),
        "old_device_got_alice": ("@e2alice:localhost", bodies["alice to both devices"]),
    }
    for key, (sender, body) in expected.items():
        assert result[key] == {
            "type": "RoomMessageText",
            "body": body,
            "sender": sender,
            "decrypted": True,
        }, key
    assert "@e2bob:localhost" in result["alice_device_lists_changed"]
    assert result["alice_wants_bobs_keys"] is True
    assert result["alice_knows_new_device"] is True

    haystacks = list(database_contents(database_config))
    for message in result["secrets"]:
        for needle in plaintext_forms(message):
            found = [where for where, data in haystacks if needle in data]
            assert found == [], f"{message['label']!r} in plaintext ({needle!r}) in {found}"
    # The search can fail: the message of the unencrypted room is found.
    control = plaintext_forms(result["control"])
    assert any(needle in data for needle in control for _, data in haystacks)
