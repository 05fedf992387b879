"""Joining a large room hosted on Synapse: ours and a second Synapse join the same room.

The host Synapse gets N accounts (shared-secret admin API, requests in parallel), a
public room they all join, and M messages.  Then each joiner (ours, then the second
Synapse, with the same config as the host) has one new user ``POST /join`` the room
through the host, and three things are timed from just before that request:

- the ``/join`` response;
- full state: until the joiner's ``GET /joined_members`` lists every member the host
  lists (both join with partial state — "faster joins", ``omit_members`` — and fill
  the member list in the background; both answer ``/joined_members`` only once it
  is whole);
- live lateness: from the moment ``/join`` returns, the host sends a message every
  100 ms for 10 s; each message's time from the host's ``PUT …/send`` to its arrival
  in the joiner user's ``/sync`` (long-polling, a filter with ``lazy_load_members``,
  which Synapse needs to show a partial-state room at all).

spec: server-server-api.md#joining-rooms, client-server-api (join, sync)
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import attrs

from bench.client_api.client import CLIENT_PREFIX, Account, Client
from bench.federation.stats import summary_ms
from tests.support.accounts import SHARED_SECRET
from tests.support.federation import FederatedServer

T = TypeVar("T")

#: Lazy-loaded members (Synapse leaves a partial-state room out of /sync without it),
#: and room timelines long enough to hold every live message of one response.
SYNC_FILTER = json.dumps(
    {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "state": {"lazy_load_members": True},
            "timeline": {"limit": 200, "lazy_load_members": True},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    }
)


@attrs.frozen
class JoinSizes:
    members: int = 1000
    events: int = 5000
    live_seconds: float = 10.0
    live_interval: float = 0.1
    room_version: str = "12"
    concurrency: int = 8
    #: How long to wait for a joiner's full member list.
    full_state_timeout: float = 900.0


@attrs.frozen
class HostRoom:
    room_id: str
    creator: Account
    setup: dict[str, float]


async def _bounded(
    items: Sequence[T], limit: int, work: Callable[[T], Awaitable[Any]]
) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(item: T) -> Any:
        async with semaphore:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def build_host_room(http: Any, host: FederatedServer, sizes: JoinSizes) -> HostRoom:
    """The room on the host: ``members`` joined accounts besides its creator and
    ``events`` messages (from the members in turn), all untimed."""
    anonymous = Client(http, host.process.base_url)
    began = time.monotonic()
    creator = await anonymous.register_with_secret("host-creator", SHARED_SECRET)
    accounts: list[Account] = await _bounded(
        [f"member{n}" for n in range(sizes.members)],
        sizes.concurrency,
        lambda name: anonymous.register_with_secret(name, SHARED_SECRET),
    )
    registered = time.monotonic()
    room_id = await anonymous.as_user(creator).create_room(
        room_version=sizes.room_version, name="large room"
    )
    await _bounded(
        accounts, sizes.concurrency, lambda account: anonymous.as_user(account).join(room_id)
    )
    joined = time.monotonic()
    senders = [anonymous.as_user(account) for account in (accounts or [creator])]
    await _bounded(
        list(range(sizes.events)),
        sizes.concurrency,
        lambda n: senders[n % len(senders)].send_text(room_id, f"history {n}"),
    )
    sent = time.monotonic()
    return HostRoom(
        room_id=room_id,
        creator=creator,
        setup={
            "register_seconds": registered - began,
            "join_seconds": joined - registered,
            "messages_seconds": sent - joined,
        },
    )


async def joined_count(client: Client, room_id: str) -> int:
    path = f"{CLIENT_PREFIX}/rooms/{quote(room_id, safe='')}/joined_members"
    return len((await client.call("GET", path))[0]["joined"])


async def _sync_arrivals(
    joiner: Client, since: str, room_id: str, arrivals: dict[str, float], stop: asyncio.Event
) -> None:
    """Long-poll /sync, noting when each ``live …`` message first appears."""
    while not stop.is_set():
        params = {"since": since, "timeout": "5000", "filter": SYNC_FILTER}
        body = (await joiner.call("GET", f"{CLIENT_PREFIX}/sync", params=params))[0]
        now = time.monotonic()
        since = body["next_batch"]
        room = body.get("rooms", {}).get("join", {}).get(room_id, {})
        for event in room.get("timeline", {}).get("events", []):
            text = event.get("content", {}).get("body")
            if event.get("type") == "m.room.message" and isinstance(text, str):
                arrivals.setdefault(text, now)


async def _full_state(
    joiner: Client, room_id: str, expected: int, within_seconds: float
) -> float | None:
    """Seconds (monotonic) when the joiner lists ``expected`` members, or None."""
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        if await joined_count(joiner, room_id) >= expected:
            return time.monotonic()
        await asyncio.sleep(0.25)
    return None


async def _partial_state_cleared(db: Path, room_id: str, began: float) -> float | None:
    """Milliseconds from ``began`` until Synapse's ``partial_state_rooms`` no longer
    lists the room (read-only, from a separate connection, every 100 ms)."""
    for _ in range(9000):
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            known = connection.execute(
                "SELECT count(*) FROM rooms WHERE room_id = ?", (room_id,)
            ).fetchone()[0]
            partial = connection.execute(
                "SELECT count(*) FROM partial_state_rooms WHERE room_id = ?", (room_id,)
            ).fetchone()[0]
        except sqlite3.OperationalError:  # locked for a moment: try again
            known, partial = 0, 1
        finally:
            connection.close()
        if known and not partial:
            return (time.monotonic() - began) * 1000
        await asyncio.sleep(0.1)
    return None


async def measure_join(
    http: Any,
    host: FederatedServer,
    room: HostRoom,
    joiner_server: FederatedServer,
    sizes: JoinSizes,
    *,
    label: str,
    partial_state_db: Path | None = None,
) -> dict[str, Any]:
    """One joiner: its user joins ``room`` through the host; the three timings.

    ``partial_state_db``: a Synapse joiner's SQLite file, to also note when the room
    leaves its ``partial_state_rooms`` table (Synapse's own "full state" mark).
    """
    host_creator = Client(http, host.process.base_url, room.creator)
    anonymous = Client(http, joiner_server.process.base_url)
    joiner = anonymous.as_user(
        await anonymous.register_with_secret(f"joiner-{label}", SHARED_SECRET)
    )
    since = (await joiner.call("GET", f"{CLIENT_PREFIX}/sync", params={"filter": SYNC_FILTER}))[0][
        "next_batch"
    ]
    expected = await joined_count(host_creator, room.room_id) + 1

    began = time.monotonic()
    await joiner.call(
        "POST",
        f"{CLIENT_PREFIX}/join/{quote(room.room_id, safe='')}",
        {},
        params={"server_name": host.server_name},
    )
    joined = time.monotonic()
    # Not awaited before the live phase: Synapse may hold the answer until it has the
    # full state, and the live messages start on schedule.
    members_at_join = asyncio.ensure_future(joined_count(joiner, room.room_id))

    partial_state = (
        asyncio.ensure_future(_partial_state_cleared(partial_state_db, room.room_id, began))
        if partial_state_db is not None
        else None
    )
    full_state = asyncio.ensure_future(
        _full_state(joiner, room.room_id, expected, sizes.full_state_timeout)
    )
    arrivals: dict[str, float] = {}
    stop = asyncio.Event()
    syncing = asyncio.ensure_future(_sync_arrivals(joiner, since, room.room_id, arrivals, stop))
    sent_at: dict[str, float] = {}
    accepted_at: dict[str, float] = {}

    async def send(n: int) -> None:
        await asyncio.sleep(max(0.0, joined + n * sizes.live_interval - time.monotonic()))
        text = f"live {label} {n}"
        sent_at[text] = time.monotonic()
        await host_creator.send_text(room.room_id, text)
        accepted_at[text] = time.monotonic()

    count = round(sizes.live_seconds / sizes.live_interval)
    await asyncio.gather(*(send(n) for n in range(count)))
    # Late messages: wait up to 120 s after the last send for them to arrive.
    for _ in range(2400):
        if all(text in arrivals for text in sent_at):
            break
        await asyncio.sleep(0.05)
    stop.set()
    full_state_at = await full_state
    await syncing
    lateness = [arrivals[text] - sent_at[text] for text in sent_at if text in arrivals]
    # From the host's answer to its PUT: without the time the host itself took to
    # accept the message (a busy host queues sends).
    after_accepted = [
        arrivals[text] - accepted_at[text] for text in accepted_at if text in arrivals
    ]
    host_send = [accepted_at[text] - sent_at[text] for text in accepted_at]
    return {
        "join_ms": (joined - began) * 1000,
        "members_listed_at_join": await members_at_join,
        "members_expected": expected,
        "full_state_ms": None if full_state_at is None else (full_state_at - began) * 1000,
        "live_messages": count,
        "live_received": len(lateness),
        "live_lateness": summary_ms(lateness),
        "live_lateness_after_host_accepted": summary_ms(after_accepted),
        "host_send": summary_ms(host_send),
        "partial_state_cleared_ms": await partial_state if partial_state else None,
    }
