"""To-device messages for users of other servers are stored as federation EDUs in
the send's own transaction (both engines): a send that committed queued them, a
retry that finds its transaction ID finds them queued, nothing twice.  Outbound
EDUs are split at 64 KiB, each part with its own ``message_id``.

spec: client-server-api/modules/send_to_device.md, server-server-api.md#send-to-device-messaging
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import pytest_twisted

from federation.e2ee.to_device import DIRECT_TO_DEVICE, MAX_EDU_BYTES, FederatedToDevice
from homeserver.storage.database import Database
from homeserver.storage.federation_outbound import FederationOutboundStore
from homeserver.storage.to_device import SendKey, ToDeviceStore

ALICE = "@alice:hs"
NOW = 1_700_000_000_000


class _Sender:
    def __init__(self) -> None:
        self.stored: list[str] = []

    def allows(self, destination: str) -> bool:
        return destination != "blocked.test"

    def durable_edus_stored(self, destinations: Collection[str]) -> None:
        self.stored.extend(sorted(destinations))


class _Inbox:
    async def receive_remote(self, *args: Any) -> None:
        raise AssertionError("not used")


def _federated() -> FederatedToDevice:
    return FederatedToDevice(server_name="hs", edus=_Sender(), inbox=_Inbox())


@pytest_twisted.ensureDeferred
async def test_remote_edus_commit_with_the_transaction_id(db: Database) -> None:
    store = ToDeviceStore(db)
    outbound = FederationOutboundStore(db)
    messages = {"@bob:remote.test": {"B1": {"room_key": "k"}}}
    edus = _federated().edus_for(ALICE, "m.room_key", messages)
    first = await store.enqueue(
        SendKey(ALICE, "A1", 0), "m.room_key", "t1", {}, now_ms=NOW, remote=edus
    )
    assert first is not None
    # A retry of the same request (the client never saw the answer) queues nothing
    # more, and what the first attempt queued is there.
    again = await store.enqueue(
        SendKey(ALICE, "A1", 0), "m.room_key", "t1", {}, now_ms=NOW, remote=edus
    )
    assert again is None
    pending = await outbound.pending_edus("remote.test", 10)
    assert [(edu.edu_type, edu.content["messages"]) for edu in pending] == [
        (DIRECT_TO_DEVICE, messages)
    ]


def test_edus_for_skip_destinations_the_sender_refuses() -> None:
    edus = _federated().edus_for(
        ALICE, "m.x", {"@a:blocked.test": {"D": {}}, "@b:ok.test": {"D": {}}}
    )
    assert [destination for destination, _, _ in edus] == ["ok.test"]


def test_large_sends_are_split_with_a_message_id_each() -> None:
    big = "x" * 10_000
    messages = {f"@u{i}:remote.test": {"D": {"ciphertext": big}} for i in range(20)}
    edus = _federated().edus_for(ALICE, "m.room.encrypted", messages)
    assert len(edus) > 1
    ids = {content["message_id"] for _, _, content in edus}
    assert len(ids) == len(edus)
    delivered: dict[str, Any] = {}
    for _, edu_type, content in edus:
        assert edu_type == DIRECT_TO_DEVICE
        assert len(json.dumps(content["messages"])) <= MAX_EDU_BYTES
        delivered.update(content["messages"])
    assert delivered == messages
