"""Outbound fan-out: a room on the server under test with members from many remote
servers (light receivers played by the benchmark, one process listening on one TLS
port per server), then messages sent there one after another: the time until every
destination has received every message, and each message's time from its
``PUT /send`` to its last destination.

spec: server-server-api.md#transactions (sending side)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs

from bench.client_api.client import Client
from bench.client_api.client import session as client_session
from bench.federation.remote import RemoteServer
from bench.federation.remote import client_session as federation_session
from bench.federation.stats import summary_ms
from tests.support.accounts import SHARED_SECRET
from tests.support.federation import FederatedServer, TestCA


@attrs.frozen
class FanoutSizes:
    destinations: int = 50
    messages: int = 200
    room_version: str = "12"
    timeout: float = 600.0


async def _wait_delivered(
    remotes: list[RemoteServer], bodies: list[str], within_seconds: float
) -> bool:
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        if all(body in remote.arrivals for remote in remotes for body in bodies):
            return True
        await asyncio.sleep(0.02)
    return False


async def run_fanout(server: FederatedServer, ca: TestCA, sizes: FanoutSizes) -> dict[str, Any]:
    async with client_session() as http, federation_session(ca, connections=200) as fed_http:
        anonymous = Client(http, server.process.base_url)
        sender = anonymous.as_user(await anonymous.register_with_secret("fanout", SHARED_SECRET))
        room_id = await sender.create_room(room_version=sizes.room_version, name="fan-out")
        remotes = [
            RemoteServer(ca, label=f"dest{n}", session=fed_http) for n in range(sizes.destinations)
        ]
        await asyncio.gather(*(remote.start() for remote in remotes))
        try:
            join_began = time.monotonic()
            for remote in remotes:  # one after another, as members trickle in
                await remote.join(server.server_name, room_id)
            join_seconds = time.monotonic() - join_began
            # Untimed warm-up: every destination's key, connection and queue are live.
            warm = [f"warm {n}" for n in range(3)]
            for body in warm:
                await sender.send_text(room_id, body)
            if not await _wait_delivered(remotes, warm, sizes.timeout):
                raise RuntimeError("the warm-up messages did not reach every destination")
            transactions_before = sum(remote.transactions for remote in remotes)

            bodies = [f"fanout {n}" for n in range(sizes.messages)]
            sent_at: dict[str, float] = {}
            began = time.monotonic()
            for body in bodies:
                sent_at[body] = time.monotonic()
                await sender.send_text(room_id, body)
            sends_done = time.monotonic()
            complete = await _wait_delivered(remotes, bodies, sizes.timeout)
            arrived = [remote.arrivals.get(body) for remote in remotes for body in bodies]
            delivered = [at for at in arrived if at is not None]
            finished = max(delivered) if delivered else time.monotonic()
            to_last = [
                max(remote.arrivals[body] for remote in remotes) - sent_at[body]
                for body in bodies
                if all(body in remote.arrivals for remote in remotes)
            ]
            to_first = [
                min(remote.arrivals[body] for remote in remotes if body in remote.arrivals)
                - sent_at[body]
                for body in bodies
                if any(body in remote.arrivals for remote in remotes)
            ]
            transactions = sum(remote.transactions for remote in remotes) - transactions_before
        finally:
            await asyncio.gather(*(remote.stop() for remote in remotes))
    return {
        "destinations": sizes.destinations,
        "messages": sizes.messages,
        "complete": complete,
        "delivered": len(delivered),
        "expected": sizes.destinations * sizes.messages,
        "all_delivered_seconds": finished - began,
        "sends_seconds": sends_done - began,
        "pdus_delivered_per_second": len(delivered) / (finished - began),
        "to_last_destination": summary_ms(to_last),
        "to_first_destination": summary_ms(to_first),
        "transactions": transactions,
        "remote_joins_seconds": join_seconds,
    }
