"""matrix-nio, a third-party client, against the real server on both engines."""

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


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config) as process:
        yield process


def run_scenario(name: str, server: ServerProcess) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.interop.nio_scenarios", name, server.base_url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
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
