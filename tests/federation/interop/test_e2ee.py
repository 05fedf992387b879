"""End-to-end encryption across servers: real crypto clients (matrix-nio, vodozemac)
on each server decrypt what the other server's user sent.

This needs, besides rooms: device-key queries and one-time-key claims over
federation, and to-device messages (the Olm-encrypted room keys) between servers.

spec: server-server-api.md#end-to-end-encryption, server-server-api.md#send-to-device-messaging
"""

from __future__ import annotations

import pytest

from tests.federation.interop.clients import ServerPair
from tests.support.federation import run_client_script

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-interop-e2ee")]


@pytest.mark.parametrize("created_on", ["ours", "other"])
def test_encrypted_messages_are_decrypted_across_servers(
    servers: ServerPair, created_on: str
) -> None:
    home, away = (
        (servers.ours, servers.other) if created_on == "ours" else (servers.other, servers.ours)
    )
    result = run_client_script(
        "tests.federation.interop.nio_federated",
        home,
        away,
        leading=["encrypted_conversation"],
        timeout=240,
    )
    assert result["encrypted"] == {"alice": True, "bob": True}
    for seen, label in (
        (result["bob_got_alice"], "alice to bob"),
        (result["alice_got_bob"], "bob to alice"),
    ):
        assert seen["type"] == "RoomMessageText", (label, seen)
        assert seen["decrypted"] is True, (label, seen)
        assert seen["body"] == result["secrets"][label]["body"]
