"""The knobs of the search benchmark (its command's flags) and shared helpers."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from bench.client_api.client import Client
from bench.client_api.workloads import latency_figures

#: Pause before reading a database's size, so background writes land (Synapse's
#: stats and user directory, our stream consumers).
SETTLE_SECONDS = 2.0


@attrs.frozen
class SearchSizes:
    # (a), (b): message search and its index
    messages: int = 100_000
    rooms: int = 10
    senders: int = 5
    queries: int = 50
    warmup: int = 3
    # (c): user directory
    users: int = 10_000
    directory_limit: int = 10
    # (d): push
    push_members: int = 1_000
    push_messages: int = 200
    push_rate: float = 2.0
    push_timeout: float = 1800.0
    event_id_only: bool = False
    # every workload
    setup_concurrency: int = 8
    index_timeout: float = 900.0


def log(server: str, message: str) -> None:
    print(f"{server}: {message}", file=sys.stderr, flush=True)


async def timed_series(
    count: int, warmup: int, request: Callable[[int], Awaitable[None]]
) -> dict[str, Any]:
    """``warmup`` untimed then ``count`` timed calls of ``request(number)``, one after
    another: latency figures of the timed ones."""
    timings = []
    for number in range(warmup + count):
        start = time.perf_counter()
        await request(number)
        if number >= warmup:
            timings.append(time.perf_counter() - start)
    return latency_figures(timings)


async def poll_until(
    check: Callable[[], Awaitable[bool]], limit_s: float, what: str, interval: float = 0.2
) -> float:
    """Call ``check`` until it answers True; the seconds that took.  Raises after
    ``limit_s`` seconds."""
    start = time.perf_counter()
    while not await check():
        if time.perf_counter() - start > limit_s:
            raise TimeoutError(f"{what}: not within {limit_s:.0f} s")
        await asyncio.sleep(interval)
    return time.perf_counter() - start


async def new_user(anonymous: Client, name: str, secret: str) -> Client:
    return anonymous.as_user(await anonymous.register_with_secret(name, secret))
