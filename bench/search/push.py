"""(d) Push rule evaluation and HTTP pushers in a ``push_members``-member room.

Setup: ``push_members`` accounts, all in one public room; each sets an HTTP pusher
(``POST /pushers/set``, ``kind: http``, its own pushkey) whose URL is the
benchmark's own gateway on loopback (:mod:`bench.search.gateway`; both servers run
with ``ip_range_whitelist: ["127.0.0.1"]`` so they may reach it).  One untimed
message must reach every other member's pusher first.

Then ``push_messages`` messages are sent at ``push_rate`` per second (each request
starts on schedule, whether or not the previous one has answered), from the first
five members in turn; every other member should get a push for each (the default
``.m.rule.message`` notifies).  The run waits until all have arrived (or nothing
arrives for 60 s, or ``push_timeout``).  Figures: the server's CPU seconds (and with
PostgreSQL its database backends') per message from the first send to the last
push; per message, the time from the start of its ``PUT`` to the first and to the
last member's push (p50, p95); pushes delivered of expected; database growth per
message and the change in rows of each push or notification table (Synapse's
``event_push_actions``: a row per notified member).

spec: client-server-api/modules/push.md, data/api/client-server/pusher.yaml,
push-gateway-api
"""

from __future__ import annotations

import asyncio
import statistics
import time
from functools import partial
from typing import Any

from bench.client_api.client import CLIENT_PREFIX, Client
from bench.client_api.servers import ServerUnderTest, free_port
from bench.client_api.workloads import bounded, percentile
from bench.cpu_meter import CpuMeter, DatabaseBackends
from bench.search import storage
from bench.search.gateway import Gateway
from bench.search.sizes import SETTLE_SECONDS, SearchSizes, log, new_user

SENDERS = 5
#: Give up waiting once no push has arrived for this long.
STALL_SECONDS = 60.0


async def set_pusher(client: Client, number: int, url: str, event_id_only: bool) -> None:
    data: dict[str, Any] = {"url": url}
    if event_id_only:
        data["format"] = "event_id_only"
    body = {
        "kind": "http",
        "app_id": "org.example.bench",
        "pushkey": f"bench-pushkey-{number}",
        "app_display_name": "bench",
        "device_display_name": f"bench device {number}",
        "lang": "en",
        "data": data,
    }
    await client.call("POST", f"{CLIENT_PREFIX}/pushers/set", body)


async def _stats(gateway: Gateway) -> dict[str, Any]:
    return await asyncio.to_thread(gateway.stats)


async def _wait_for(
    gateway: Gateway, event_ids: list[str], expected_each: int, limit_s: float
) -> dict[str, Any]:
    """Poll the gateway until every event has ``expected_each`` pushes, nothing new
    arrived for :data:`STALL_SECONDS`, or after ``limit_s``; the last stats."""
    start = time.monotonic()
    last_total, last_change = -1, start
    while True:
        stats = await _stats(gateway)
        arrived = [stats["by_event"].get(event_id, [0])[0] for event_id in event_ids]
        now = time.monotonic()
        if all(count >= expected_each for count in arrived):
            return stats
        if stats["total"] != last_total:
            last_total, last_change = stats["total"], now
        if now - last_change > STALL_SECONDS or now - start > limit_s:
            return stats
        await asyncio.sleep(0.5)


async def _setup(
    server: ServerUnderTest, anonymous: Client, sizes: SearchSizes, gateway: Gateway
) -> tuple[list[Client], str]:
    members = await bounded(
        sizes.setup_concurrency,
        [
            partial(new_user, anonymous, f"push_member_{number}", server.shared_secret)
            for number in range(sizes.push_members)
        ],
    )
    room_id = await members[0].create_room(room_version="12", name="push room")
    await bounded(sizes.setup_concurrency, [partial(m.join, room_id) for m in members[1:]])
    await bounded(
        sizes.setup_concurrency,
        [
            partial(set_pusher, member, number, gateway.url, sizes.event_id_only)
            for number, member in enumerate(members)
        ],
    )
    return members, room_id


async def run(
    server: ServerUnderTest, anonymous: Client, sizes: SearchSizes, figures: dict[str, Any]
) -> None:
    gateway = Gateway(free_port())
    await asyncio.to_thread(gateway.start)
    try:
        figures.update(await _run(server, anonymous, sizes, gateway))
    finally:
        await asyncio.to_thread(gateway.stop)


async def _run(
    server: ServerUnderTest, anonymous: Client, sizes: SearchSizes, gateway: Gateway
) -> dict[str, Any]:
    start = time.perf_counter()
    members, room_id = await _setup(server, anonymous, sizes, gateway)
    setup_seconds = time.perf_counter() - start
    log(server.name, f"push: {len(members):,} members with pushers in {setup_seconds:.0f} s")
    each = len(members) - 1
    warmup = await members[0].send_text(room_id, "warm-up")
    stats = await _wait_for(gateway, [warmup], each, 120.0)
    if stats["by_event"].get(warmup, [0])[0] < each:
        got = stats["by_event"].get(warmup, [0])[0]
        raise RuntimeError(f"the untimed message reached {got} of {each} pushers in 120 s")
    backends = None
    if server.database.engine == "psycopg2":
        backends = await asyncio.to_thread(DatabaseBackends, server.database)
    assert server.pid is not None
    meter = CpuMeter(server.pid, backends)
    await asyncio.sleep(SETTLE_SECONDS)
    db_before = await asyncio.to_thread(storage.size_bytes, server.database)
    rows_before = await asyncio.to_thread(storage.push_row_counts, server.database)
    cpu_before = await meter.read()
    sent_at: dict[str, float] = {}
    first_send = time.monotonic()

    async def send(number: int) -> None:
        sender = members[number % min(SENDERS, len(members))]
        began = time.monotonic()
        event_id = await sender.send_text(room_id, f"push message {number}")
        sent_at[event_id] = began

    tasks = []
    for number in range(sizes.push_messages):
        delay = first_send + number / sizes.push_rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(number)))
    await asyncio.gather(*tasks)
    send_seconds = time.monotonic() - first_send
    stats = await _wait_for(gateway, list(sent_at), each, sizes.push_timeout)
    cpu_after = await meter.read()
    if backends is not None:
        backends.close()
    await asyncio.sleep(SETTLE_SECONDS)
    db_after = await asyncio.to_thread(storage.size_bytes, server.database)
    rows_after = await asyncio.to_thread(storage.push_row_counts, server.database)
    return _figures(sizes, each, sent_at, stats, first_send, send_seconds, setup_seconds) | {
        "server_cpu_ms_per_message": _per_message(cpu_after.server - cpu_before.server, sizes),
        "database_cpu_ms_per_message": _database_cpu(cpu_before.backends, cpu_after.backends)
        / sizes.push_messages
        * 1000
        if backends is not None
        else None,
        "db_bytes_per_message": (db_after - db_before) / sizes.push_messages,
        "push_table_rows_per_message": {
            name: (rows_after.get(name, 0) - rows_before.get(name, 0)) / sizes.push_messages
            for name in sorted(set(rows_before) | set(rows_after))
            if rows_after.get(name, 0) != rows_before.get(name, 0)
        },
    }


def _per_message(cpu_seconds: float, sizes: SearchSizes) -> float:
    return cpu_seconds / sizes.push_messages * 1000


def _database_cpu(before: dict[int, float] | None, after: dict[int, float] | None) -> float:
    if before is None or after is None:
        return 0.0
    return sum(now - before.get(pid, 0.0) for pid, now in after.items())


def _figures(
    sizes: SearchSizes,
    each: int,
    sent_at: dict[str, float],
    stats: dict[str, Any],
    first_send: float,
    send_seconds: float,
    setup_seconds: float,
) -> dict[str, Any]:
    arrivals = {event_id: stats["by_event"].get(event_id) for event_id in sent_at}
    complete = {e: a for e, a in arrivals.items() if a is not None and a[0] >= each}
    firsts = [a[1] - sent_at[e] for e, a in arrivals.items() if a is not None]
    lasts = [a[2] - sent_at[e] for e, a in complete.items()]
    delivered = sum(a[0] for a in arrivals.values() if a is not None)
    last_arrival = max((a[2] for a in arrivals.values() if a is not None), default=first_send)
    figures: dict[str, Any] = {
        "members": each + 1,
        "messages": len(sent_at),
        "setup_seconds": setup_seconds,
        "send_seconds": send_seconds,
        "delivered": delivered,
        "expected": each * len(sent_at),
        "delivered_fraction": delivered / (each * len(sent_at)),
        "messages_complete": len(complete),
        "duplicates": stats["duplicates"],
        "without_event": stats["without_event"],
        "drain_seconds": last_arrival - first_send,
        "pushes_per_second": delivered / max(last_arrival - first_send, 1e-9),
    }
    for name, values in (("first_push", firsts), ("last_push", lasts)):
        if values:
            ms = [value * 1000 for value in values]
            figures[f"{name}_median_ms"] = statistics.median(ms)
            figures[f"{name}_p95_ms"] = percentile(ms, 0.95)
    return figures
