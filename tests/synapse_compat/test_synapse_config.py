"""A ``homeserver.yaml`` written by a real Synapse (the pinned release) runs our server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from homeserver.config.synapse_keys import SYNAPSE_EXAMPLES, SYNAPSE_KEY_TREE
from tests.support.server_process import ServerProcess, free_port, run_command
from tests.support.synapse import generate_synapse_config

# Synapse's newer rate limits, which an earlier hand-kept list did not know.
NEWER_SYNAPSE_KEYS = (
    "rc_registration_token_validity",
    "rc_profile",
    "rc_third_party_invite",
    "rc_user_directory",
    "federation_rr_transactions_per_room_per_second",
)


def synapse_config_with_rate_limits(folder: Path) -> tuple[Path, int]:
    """Synapse's generated config on a free port, plus every rate limit Synapse
    documents with its documentation's example value (appended as text, so the rest
    of the file stays as Synapse wrote it)."""
    path = generate_synapse_config(folder)
    port = free_port()
    text, count = re.subn(r"(?m)^(\s*)port: 8008$", rf"\g<1>port: {port}", path.read_text())
    assert count == 1, "Synapse's generated listener changed"
    rate_limits = {
        key: SYNAPSE_EXAMPLES[key]
        for key in SYNAPSE_KEY_TREE
        if key.startswith(("rc_", "federation_rr_"))
    }
    assert set(NEWER_SYNAPSE_KEYS) <= set(rate_limits)
    path.write_text(text + "\n" + yaml.safe_dump(rate_limits, sort_keys=False))
    return path, port


@pytest.mark.slow
def test_synapse_generated_config_is_accepted_with_warnings(tmp_path: Path) -> None:
    path, port = synapse_config_with_rate_limits(tmp_path)
    # Synapse's generated paths (database, media, key, log config) are in tmp_path.
    assert str(tmp_path) in yaml.safe_load(path.read_text())["signing_key_path"]

    check = run_command(["check-config", "-c", str(path)], cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == f"{path}: OK (server_name example.com)"
    lines = check.stderr.strip().splitlines()
    assert all(line.startswith("homeserver: warning: ") for line in lines), lines
    warned = {line.removeprefix("homeserver: warning: ").split(":")[0] for line in lines}
    for key in (*NEWER_SYNAPSE_KEYS, "macaroon_secret_key", "form_secret"):
        assert key in warned
    # What we act on is read and checked, not ignored (the listener's client and
    # federation resources are both served).
    assert warned.isdisjoint(
        {
            "rc_message",
            "rc_login",
            "listeners[0].port",
            "listeners[0].resources[0].names",
            "database",
            "trusted_key_servers",
        }
    )

    server = ServerProcess(tmp_path, yaml.safe_load(path.read_text()))
    server.start(create_key=False)
    try:
        response = server.request("GET", "/_matrix/client/versions")
        assert response.status == 200
        assert "v1.1" in response.json()["versions"]
        assert (tmp_path / "homeserver.db").exists()
    finally:
        server.stop()
    # Synapse's log config (with its buffering handler, flushed at exit) was used.
    assert "is running" in (tmp_path / "homeserver.log").read_text()


@pytest.mark.slow
def test_synapse_config_with_a_wrong_value_we_understand_stops_with_one_line(
    tmp_path: Path,
) -> None:
    path, _ = synapse_config_with_rate_limits(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["listeners"][0]["port"] = "abc"
    path.write_text(yaml.safe_dump(data))
    for command in (["check-config", "-c", str(path)], ["-c", str(path)]):
        result = run_command(command, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            "homeserver: config error: listeners[0].port: expected an integer, got a string"
        ]
