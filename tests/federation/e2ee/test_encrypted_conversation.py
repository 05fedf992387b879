"""A remote user's encrypted message is decrypted across servers by real crypto
clients (matrix-nio, vodozemac): alice on one of our servers, bob on the other, in
an encrypted room; each decrypts the other's message, and bob's new device — which
alice's client learns of through ``device_lists`` — decrypts her next one.

spec: server-server-api.md#device-management, #end-to-end-encryption,
#send-to-device-messaging
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.federation.interop.clients import ServerPair
from tests.support.federation import (
    FederatedServer,
    TestCA,
    database_section,
    federated_server,
    run_client_script,
)
from tests.support.synapse_server import synapse_server

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def with_synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPair]:
    """Our server (SQLite) and a real Synapse, federating."""
    folder = tmp_path_factory.mktemp("e2ee-synapse")
    ca = TestCA.create(folder / "ca")
    with (
        database_section("sqlite", folder / "ours-db") as ours_db,
        federated_server(folder, ours_db, ca, name="ours") as ours,
        synapse_server(folder, ca, name="synapse") as synapse,
    ):
        yield ServerPair(pairing="ours-synapse", engine="sqlite", ca=ca, ours=ours, other=synapse)


def run_scenario(home: FederatedServer, away: FederatedServer) -> dict[str, Any]:
    return run_client_script("tests.federation.e2ee.nio_e2ee", home, away, timeout=300)


def test_remote_users_decrypt_each_others_messages_and_a_new_device_is_seen(
    servers: ServerPair,
) -> None:
    check(run_scenario(servers.ours, servers.other))


@pytest.mark.parametrize("alice_on", ["ours", "synapse"])
def test_encryption_works_with_synapse_users(with_synapse: ServerPair, alice_on: str) -> None:
    ours, synapse = with_synapse.ours, with_synapse.other
    check(run_scenario(ours, synapse) if alice_on == "ours" else run_scenario(synapse, ours))


def check(result: dict[str, Any]) -> None:
    assert result["encrypted"] is True
    assert result["bob_encrypted"] is True, result.get("bob_state")
    for seen, label in (
        (result["bob_got_alice"], "alice to bob"),
        (result["alice_got_bob"], "bob to alice"),
        (result["new_device_got_alice"], "alice to both devices"),
        (result["old_device_got_alice"], "alice to both devices"),
    ):
        assert seen["type"] == "RoomMessageText", (label, seen)
        assert seen["decrypted"] is True, (label, seen)
        assert seen["body"] == result["secrets"][label]["body"]
    assert result["alice_saw_bob_change"] is True
    assert result["alice_knows_new_device"] is True
