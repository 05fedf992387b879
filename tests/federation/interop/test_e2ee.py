"""End-to-end encryption across servers: real crypto clients (matrix-nio, vodozemac)
on each server decrypt what the other server's user sent.

This needs, besides rooms: device-key queries and one-time-key claims over
federation, and to-device messages (the Olm-encrypted room keys) between servers.

spec: server-server-api.md#end-to-end-encryption, server-server-api.md#send-to-device-messaging
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.federation.interop.clients import ServerPair
from tests.support.federation import FederatedServer
from tests.support.server_process import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-interop-e2ee")]


def run_nio(scenario: str, home: FederatedServer, away: FederatedServer) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.federation.interop.nio_federated",
            scenario,
            home.process.base_url,
            away.process.base_url,
            home.server_name,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, (
        done.stderr[-5000:]
        + f"\n--- {home.server_name} ---\n"
        + home.process.log()[-10_000:]
        + f"\n--- {away.server_name} ---\n"
        + away.process.log()[-10_000:]
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("created_on", ["ours", "other"])
def test_encrypted_messages_are_decrypted_across_servers(
    servers: ServerPair, created_on: str
) -> None:
    home, away = (
        (servers.ours, servers.other) if created_on == "ours" else (servers.other, servers.ours)
    )
    result = run_nio("encrypted_conversation", home, away)
    assert result["encrypted"] == {"alice": True, "bob": True}
    for seen, label in (
        (result["bob_got_alice"], "alice to bob"),
        (result["alice_got_bob"], "bob to alice"),
    ):
        assert seen["type"] == "RoomMessageText", (label, seen)
        assert seen["decrypted"] is True, (label, seen)
        assert seen["body"] == result["secrets"][label]["body"]
