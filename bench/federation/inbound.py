"""Inbound PDUs per second: a remote server (played by the benchmark, so the sender is
never the bottleneck) pushes messages into a room on the server under test, in
``PUT /send`` transactions of 50 PDUs, one transaction after another (as a real
sender does per destination), each once the previous one's PDUs are visible.  Timed from the first transaction to the moment the
last message is visible to the receiving user (``GET /rooms/{id}/event/{eventId}``).

spec: server-server-api.md#transactions, server-server-api.md#pdus
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import attrs

from bench.client_api.client import CLIENT_PREFIX, Client, RequestFailed
from bench.client_api.client import session as client_session
from bench.federation.remote import RemoteServer
from bench.federation.remote import client_session as federation_session
from bench.federation.stats import summary_ms
from tests.support.accounts import SHARED_SECRET
from tests.support.federation import FederatedServer, TestCA


@attrs.frozen
class InboundSizes:
    pdus: int = 5000
    batch: int = 50
    room_version: str = "12"


async def wait_visible(
    client: Client, room_id: str, event_id: str, within_seconds: float, poll: float = 0.02
) -> float:
    """Poll until the user sees ``event_id``; the monotonic time it was first seen."""
    path = f"{CLIENT_PREFIX}/rooms/{quote(room_id, safe='')}/event/{quote(event_id, safe='')}"
    deadline = time.monotonic() + within_seconds
    while True:
        try:
            await client.call("GET", path)
            return time.monotonic()
        except RequestFailed as failed:
            if failed.status != 404 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(poll)


async def run_inbound(server: FederatedServer, ca: TestCA, sizes: InboundSizes) -> dict[str, Any]:
    async with client_session() as http, federation_session(ca) as fed_http:
        anonymous = Client(http, server.process.base_url)
        receiver = anonymous.as_user(
            await anonymous.register_with_secret("receiver", SHARED_SECRET)
        )
        room_id = await receiver.create_room(room_version=sizes.room_version, name="inbound")
        remote = RemoteServer(ca, label="inbound-sender", session=fed_http)
        await remote.start()
        try:
            room = await remote.join(server.server_name, room_id)
            # Synapse answers send_join a moment before a /send can build on the join
            # (its prev_events lookup then fails): wait until the join is visible.
            await wait_visible(receiver, room_id, room.join_id, within_seconds=60)
            # Untimed warm-up: the receiver fetches our key and warms its caches.
            await remote.send_transaction(
                server.server_name,
                remote.message_pdus(room, [f"warm {n}" for n in range(sizes.batch)]),
            )
            await wait_visible(receiver, room_id, room.latest_id, within_seconds=120)

            # Signed before timing: the sender's own work is not measured.
            batches: list[tuple[list[dict[str, Any]], str]] = []
            for start in range(0, sizes.pdus, sizes.batch):
                bodies = [
                    f"inbound {n}" for n in range(start, min(start + sizes.batch, sizes.pdus))
                ]
                batches.append((remote.message_pdus(room, bodies), room.latest_id))
            rejected = 0
            transaction_seconds: list[float] = []
            began = time.monotonic()
            for pdus, last_id in batches:
                sent = time.monotonic()
                answer = await remote.send_transaction(server.server_name, pdus)
                transaction_seconds.append(time.monotonic() - sent)
                rejected += sum(1 for result in answer.get("pdus", {}).values() if result)
                # The next transaction only once this one's PDUs are persisted: Synapse
                # acknowledges a transaction before processing its PDUs (a staging
                # table) and prunes a room's staging area past 100 events, so a sender
                # running ahead would measure how much Synapse drops.
                await wait_visible(receiver, room_id, last_id, within_seconds=600, poll=0.01)
            visible = time.monotonic()
        finally:
            await remote.stop()
    return {
        "pdus": sizes.pdus,
        "batch": sizes.batch,
        "pdus_per_second": sizes.pdus / (visible - began),
        "visible_seconds": visible - began,
        "rejected_pdus": rejected,
        "transaction": summary_ms(transaction_seconds),
    }
