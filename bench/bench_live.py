"""Benchmark: live delivery, and the cost of keeping users online; ours vs Synapse.

Each server runs on its own (ours first, then Synapse; the other one is not running),
started and stopped with the client-API benchmark's helpers
(``bench/client_api/servers.py``: generated config, fresh SQLite file or PostgreSQL
database, every ``rc_*`` limit raised out of reach) plus ``presence: {enabled: true}``.
Accounts come from the shared-secret admin API, as in that benchmark.

1. Send -> wake-up latency.  A recipient long-polls ``/sync?since=…&timeout=30000``
   (or holds our WebSocket stream); a sender sends into their shared room.  Latency
   is from just before the sender's ``PUT …/send`` to the recipient's client having
   parsed the response or frame that carries the event.  The next message goes only
   after the previous one arrived, and after a pause (``--pause-ms``) that lets the
   recipient park its next long poll.  Median and p95 of ``--messages`` after
   ``--warmup`` untimed.  Series: ours over /sync, ours over the stream, Synapse over
   /sync (Synapse has no stream: n/a).

2. Server CPU with ``--users`` online users in ``--rooms`` rooms of about
   ``--room-size`` members (each user in one or two rooms).  Every user keeps
   presence online: over /sync, a long-poll loop with ``set_presence=online`` (the
   way Synapse keeps a user online); over our stream, one WebSocket per user sending
   a ping frame every ``--ping-interval`` seconds.  Random users send ``--rate``
   messages per second in all into one of their rooms.  Once every client is
   connected, the load runs ``--online-settle`` seconds in a server's first load
   phase (the users come online, and 60 s later every one's ``currently_active``
   turns false: a wave of presence changes that is over by then) or ``--settle``
   seconds in the next (the users stay online between phases); then the server's CPU
   time (utime + stime of every process in its process tree, from
   ``/proc/<pid>/stat``) is read over ``--window`` seconds.  With ``--postgres``
   the CPU of the PostgreSQL backends serving its database (``pg_stat_activity``)
   is shown too, and the sum of both.  Also counted in the window: presence events
   and sync bodies the clients received, messages sent, client errors and
   disconnects, the load generator's own CPU and its event-loop lag (if the client
   were saturated, the figures would be the client's, not the server's), and the CPU
   everything else on the machine used.

Every client runs in this one process (asyncio + aiohttp).  Run from the repository
root:

    .venv/bin/python -m bench.bench_live [--postgres] [--json FILE]
        [--users N] [--messages N] [--window S] [--only ours|synapse] [--no-stream]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import yaml

from bench.client_api import client
from bench.client_api.client import CLIENT_PREFIX, Client, RequestFailed
from bench.client_api.report import write_json
from bench.client_api.servers import ServerUnderTest, log_problem_lines, log_problems
from bench.client_api.turns import each_server
from bench.client_api.workloads import bounded, latency_figures, percentile
from bench.cpu_meter import CpuMeter, DatabaseBackends, process_tree

STREAM_PATH = "/_matrix/client/unstable/dev.homeserver/stream"
SYNC_PATH = f"{CLIENT_PREFIX}/sync"
LONG_POLL_MS = 30_000
#: A /sync filter that leaves nothing but ``next_batch``: how accounts get a starting
#: token without paying for (or timing) an initial sync.
EMPTY_FILTER = json.dumps(
    {"room": {"rooms": []}, "presence": {"types": []}, "account_data": {"types": []}},
    separators=(",", ":"),
)
#: Pause between phases, so the previous phase's background work settles.
PHASE_GAP_SECONDS = 3.0
#: How long every stream client gets to receive its first frame.
CONNECT_TIMEOUT_SECONDS = 120.0
#: Distinct error messages kept (each with its count); errors beyond them are only
#: counted.
MAX_ERROR_SAMPLES = 20
ERRORS = (RequestFailed, aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError)


@attrs.frozen
class LiveSizes:
    users: int = 1000
    rooms: int = 30
    room_size: int = 50
    messages: int = 200
    warmup: int = 10
    pause_ms: int = 100
    window_s: float = 60.0
    settle_s: float = 30.0
    online_settle_s: float = 90.0
    message_rate: float = 2.0
    ping_interval_s: float = 10.0
    setup_concurrency: int = 8
    connect_concurrency: int = 50
    room_version: str | None = "12"
    seed: int = 1


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- CPU time from /proc ------------------------------------------------------------------


def assign_rooms(users: int, rooms: int, room_size: int) -> list[list[int]]:
    """Members (user indices) of each room, the creator first.

    User ``u`` is in room ``u mod rooms``; the first ``rooms * room_size - users``
    users (at most all of them) are also in room ``(u + rooms // 2) mod rooms``, so
    rooms get about ``room_size`` members and each user is in one or two rooms.
    """
    if rooms < 1 or users < rooms:
        raise SystemExit(f"need at least one room and as many users as rooms ({rooms})")
    members: list[list[int]] = [[] for _ in range(rooms)]
    for user in range(users):
        members[user % rooms].append(user)
    if rooms > 1:
        shift = rooms // 2
        for user in range(min(users, max(0, rooms * room_size - users))):
            members[(user + shift) % rooms].append(user)
    return members


@attrs.define
class Population:
    """One server's accounts and rooms, and each account's latest sync token."""

    users: list[Client]
    rooms_of: dict[str, list[str]]
    room_sizes: list[int]
    sender: Client
    receiver: Client
    pair_room: str
    since: dict[str, str]


async def _register(anonymous: Client, shared_secret: str, username: str) -> Client:
    return anonymous.as_user(await anonymous.register_with_secret(username, shared_secret))


async def _starting_token(user: Client) -> str:
    """A ``next_batch`` from a /sync that returns nothing else (and sets no presence)."""
    params = {"filter": EMPTY_FILTER, "set_presence": "offline", "timeout": "0"}
    return str((await user.call("GET", SYNC_PATH, params=params))[0]["next_batch"])


async def setup(
    server: ServerUnderTest, http: aiohttp.ClientSession, sizes: LiveSizes
) -> Population:
    concurrency = sizes.setup_concurrency
    anonymous = Client(http, server.base_url)
    register = partial(_register, anonymous, server.shared_secret)
    started = time.perf_counter()
    users = await bounded(concurrency, [partial(register, f"live_{i}") for i in range(sizes.users)])
    _log(f"{server.name}: {len(users)} accounts in {time.perf_counter() - started:.1f}s")
    members = assign_rooms(sizes.users, sizes.rooms, sizes.room_size)
    # One room per creator, all different users (two createRoom calls by one user in
    # the same millisecond would make the same v12 room ID).
    rooms = await bounded(
        concurrency,
        [
            partial(users[group[0]].create_room, room_version=sizes.room_version, name=f"live {r}")
            for r, group in enumerate(members)
        ],
    )
    # Joins interleaved across rooms, so the requests in flight go to different rooms.
    joins = [
        partial(users[group[position]].join, rooms[r])
        for position in range(1, max(len(group) for group in members))
        for r, group in enumerate(members)
        if position < len(group)
    ]
    started = time.perf_counter()
    await bounded(concurrency, joins)
    _log(f"{server.name}: {len(joins)} joins in {time.perf_counter() - started:.1f}s")
    rooms_of: dict[str, list[str]] = {user.user_id: [] for user in users}
    for r, group in enumerate(members):
        for index in group:
            rooms_of[users[index].user_id].append(rooms[r])
    sender = await register("live_sender")
    receiver = await register("live_receiver")
    pair_room = await sender.create_room(room_version=sizes.room_version, name="wake-up")
    await receiver.join(pair_room)
    everyone = [*users, receiver]
    tokens = await bounded(concurrency, [partial(_starting_token, user) for user in everyone])
    return Population(
        users=users,
        rooms_of=rooms_of,
        room_sizes=[len(group) for group in members],
        sender=sender,
        receiver=receiver,
        pair_room=pair_room,
        since={user.user_id: token for user, token in zip(everyone, tokens, strict=True)},
    )


# -- one stream connection ------------------------------------------------------------------


def _stream_params(user: Client, since: str, ping_interval_s: float) -> dict[str, str]:
    assert user.account is not None
    return {
        "access_token": user.account.access_token,
        "since": since,
        "set_presence": "online",
        "heartbeat_interval_ms": str(int(ping_interval_s * 1000)),
    }


async def _pinger(
    ws: aiohttp.ClientWebSocketResponse, interval_s: float, first_after_s: float
) -> None:
    """``{"type": "ping"}`` every ``interval_s``; ends quietly when the socket closes."""
    await asyncio.sleep(first_after_s)
    number = 0
    while not ws.closed:
        try:
            await ws.send_str(json.dumps({"type": "ping", "id": number}))
        except (aiohttp.ClientError, OSError, RuntimeError):
            return
        number += 1
        await asyncio.sleep(interval_s)


def _frame(message: aiohttp.WSMessage) -> dict[str, Any]:
    if message.type is not aiohttp.WSMsgType.TEXT:
        raise ValueError(f"unexpected {message.type.name} message: {message.data!r}"[:300])
    frame = json.loads(message.data)
    if not isinstance(frame, dict):
        raise ValueError(f"frame is not a JSON object: {message.data[:200]}")
    return frame


def _timeline_ids(body: dict[str, Any], room_id: str) -> set[str]:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return {str(event.get("event_id")) for event in room.get("timeline", {}).get("events", [])}


# -- 1. send -> wake-up latency --------------------------------------------------------------

Arrivals = asyncio.Queue[tuple[float, set[str]]]


async def sync_receiver(user: Client, pop: Population, room: str, arrivals: Arrivals) -> None:
    """Long-poll forever; queue (arrival time, event IDs) for ``room``'s new events."""
    since = pop.since[user.user_id]
    while True:
        params = {"since": since, "timeout": str(LONG_POLL_MS)}
        body = (await user.call("GET", SYNC_PATH, params=params))[0]
        arrived = time.perf_counter()
        since = pop.since[user.user_id] = str(body["next_batch"])
        ids = _timeline_ids(body, room)
        if ids:
            arrivals.put_nowait((arrived, ids))


async def stream_receiver(
    ws_http: aiohttp.ClientSession,
    server: ServerUnderTest,
    user: Client,
    pop: Population,
    room: str,
    arrivals: Arrivals,
    ready: asyncio.Event,
    ping_interval_s: float,
) -> None:
    """Hold one stream connection; queue (arrival time, event IDs) for ``room``."""
    params = _stream_params(user, pop.since[user.user_id], ping_interval_s)
    async with ws_http.ws_connect(server.base_url + STREAM_PATH, params=params) as ws:
        pinger = asyncio.create_task(_pinger(ws, ping_interval_s, ping_interval_s))
        try:
            async for message in ws:
                frame = _frame(message)
                kind = frame.get("type")
                if kind == "sync":
                    body = frame["body"]
                    arrived = time.perf_counter()
                    pop.since[user.user_id] = str(body["next_batch"])
                    ready.set()
                    ids = _timeline_ids(body, room)
                    if ids:
                        arrivals.put_nowait((arrived, ids))
                elif kind == "error":
                    raise RuntimeError(f"error frame: {frame}")
        finally:
            pinger.cancel()
        raise RuntimeError(f"stream closed by the server (code {ws.close_code})")


async def _next_arrival(arrivals: Arrivals, receiver: asyncio.Task[None]) -> tuple[float, set[str]]:
    getter = asyncio.ensure_future(arrivals.get())
    done, _ = await asyncio.wait(
        {getter, receiver}, timeout=LONG_POLL_MS / 1000 + 10, return_when=asyncio.FIRST_COMPLETED
    )
    if getter in done:
        return getter.result()
    getter.cancel()
    if receiver in done:
        receiver.result()  # raises the receiver's error
        raise RuntimeError("the receiver stopped")
    raise TimeoutError("the message did not arrive")


async def wakeup(
    pop: Population, sizes: LiveSizes, arrivals: Arrivals, receiver: asyncio.Task[None]
) -> dict[str, Any]:
    latencies: list[float] = []
    sends: list[float] = []
    for trial in range(sizes.warmup + sizes.messages):
        # The recipient's next long poll gets this long to reach the server and park.
        await asyncio.sleep(sizes.pause_ms / 1000)
        while not arrivals.empty():
            arrivals.get_nowait()
        start = time.perf_counter()
        event_id = await pop.sender.send_text(pop.pair_room, f"wake up {trial}")
        sent = time.perf_counter()
        while True:
            arrived, ids = await _next_arrival(arrivals, receiver)
            if event_id in ids:
                break
        if trial >= sizes.warmup:
            latencies.append(arrived - start)
            sends.append(sent - start)
    figures: dict[str, Any] = latency_figures(latencies)
    figures["send_median_ms"] = statistics.median(sends) * 1000
    return figures


async def latency_series(
    server: ServerUnderTest,
    meter: CpuMeter,
    pop: Population,
    sizes: LiveSizes,
    ws_http: aiohttp.ClientSession,
    mode: str,
) -> dict[str, Any]:
    arrivals: Arrivals = asyncio.Queue()
    ready = asyncio.Event()
    if mode == "sync":
        receiver = asyncio.create_task(sync_receiver(pop.receiver, pop, pop.pair_room, arrivals))
        ready.set()
    else:
        receiver = asyncio.create_task(
            stream_receiver(
                ws_http,
                server,
                pop.receiver,
                pop,
                pop.pair_room,
                arrivals,
                ready,
                sizes.ping_interval_s,
            )
        )
    try:
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiter, receiver}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if receiver.done():
            receiver.result()
        if not ready.is_set():
            raise TimeoutError("no first stream frame within 30 s")
        before = await meter.read()
        figures = await wakeup(pop, sizes, arrivals, receiver)
        rates = (await meter.read()).rates_since(before)
        figures["server_cpu_per_second"] = rates["server"]
        figures["database_cpu_per_second"] = rates["database"]
        figures["other_cpu_per_second"] = rates["other"]
        return figures
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)


# -- 2. CPU with many online users ---------------------------------------------------------


@attrs.define
class LoadStats:
    """What the clients saw; the ``*_in_window`` figures only while ``counting``."""

    counting: bool = False
    bodies: int = 0
    presence_events: int = 0
    #: Over the whole phase: users coming online show here, whatever the window holds.
    presence_events_total: int = 0
    presence_states: Counter[str] = attrs.field(factory=Counter)
    timeline_events: int = 0
    ephemeral_events: int = 0
    ephemeral_types: Counter[str] = attrs.field(factory=Counter)
    pongs: int = 0
    sent: int = 0
    send_seconds: list[float] = attrs.field(factory=list)
    loop_lag: list[float] = attrs.field(factory=list)
    connected: int = 0
    #: Over the whole phase (connecting and settling included).
    errors: int = 0
    disconnects: int = 0
    close_codes: Counter[str] = attrs.field(factory=Counter)
    error_samples: Counter[str] = attrs.field(factory=Counter)

    def error(self, text: str) -> None:
        self.errors += 1
        text = text[:300]
        if text in self.error_samples or len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples[text] += 1

    def body(self, body: dict[str, Any]) -> None:
        events = body.get("presence", {}).get("events", [])
        self.presence_events_total += len(events)
        if not self.counting:
            return
        self.bodies += 1
        self.presence_events += len(events)
        for event in events:
            self.presence_states[str(event.get("content", {}).get("presence"))] += 1
        for room in body.get("rooms", {}).get("join", {}).values():
            self.timeline_events += len(room.get("timeline", {}).get("events", []))
            ephemeral = room.get("ephemeral", {}).get("events", [])
            self.ephemeral_events += len(ephemeral)
            for event in ephemeral:
                self.ephemeral_types[str(event.get("type"))] += 1


def _describe(error: BaseException) -> str:
    if isinstance(error, aiohttp.WSServerHandshakeError):
        return f"stream handshake -> {error.status} {error.message}"
    return f"{type(error).__name__}: {error}"


async def sync_client(user: Client, pop: Population, stats: LoadStats) -> None:
    """The /sync loop of one online user."""
    while True:
        params = {
            "since": pop.since[user.user_id],
            "timeout": str(LONG_POLL_MS),
            "set_presence": "online",
        }
        try:
            body = (await user.call("GET", SYNC_PATH, params=params))[0]
            pop.since[user.user_id] = str(body["next_batch"])
        except ERRORS as error:
            stats.error(f"/sync: {_describe(error)}")
            await asyncio.sleep(1.0)
            continue
        stats.body(body)


async def stream_client(
    ws_http: aiohttp.ClientSession,
    server: ServerUnderTest,
    user: Client,
    pop: Population,
    stats: LoadStats,
    sizes: LiveSizes,
    first_ping_after_s: float,
    gate: asyncio.Semaphore,
    on_first_frame: Callable[[], None],
) -> None:
    """One user's stream connection, reconnected (from its last token) if it drops."""
    first = True
    while True:
        params = _stream_params(user, pop.since[user.user_id], sizes.ping_interval_s)
        try:
            async with gate:
                ws = await ws_http.ws_connect(server.base_url + STREAM_PATH, params=params)
            async with ws:
                pinger = asyncio.create_task(_pinger(ws, sizes.ping_interval_s, first_ping_after_s))
                try:
                    async for message in ws:
                        frame = _frame(message)
                        kind = frame.get("type")
                        if kind == "sync":
                            body = frame["body"]
                            pop.since[user.user_id] = str(body["next_batch"])
                            stats.body(body)
                            if first:
                                first = False
                                on_first_frame()
                        elif kind == "pong":
                            stats.pongs += stats.counting
                        elif kind == "error":
                            stats.error(f"error frame {frame.get('errcode')}: {frame.get('error')}")
                finally:
                    pinger.cancel()
            stats.disconnects += 1
            stats.close_codes[str(ws.close_code)] += 1
        except ERRORS as error:
            stats.error(_describe(error))
        await asyncio.sleep(1.0)


async def drive_messages(pop: Population, sizes: LiveSizes, stats: LoadStats) -> None:
    """``message_rate`` messages per second in all, each by a random user into one of
    its rooms; each send is its own task, so a slow one never delays the schedule."""
    rng = random.Random(sizes.seed)
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def send(user: Client, room: str, number: int) -> None:
        start = time.perf_counter()
        try:
            await user.send_text(room, f"live message {number}")
        except ERRORS as error:
            stats.error(f"send: {_describe(error)}")
            return
        if stats.counting:
            stats.sent += 1
            stats.send_seconds.append(time.perf_counter() - start)

    next_at = loop.time()
    number = 0
    try:
        while True:
            next_at += 1 / sizes.message_rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            user = rng.choice(pop.users)
            task = asyncio.create_task(send(user, rng.choice(pop.rooms_of[user.user_id]), number))
            pending.add(task)
            task.add_done_callback(pending.discard)
            number += 1
    finally:
        for task in pending:
            task.cancel()


async def watch_loop_lag(stats: LoadStats, interval_s: float = 0.05) -> None:
    """How late the load generator's event loop wakes up (it would be late if the
    client, not the server, were the bottleneck)."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(interval_s)
        if stats.counting:
            stats.loop_lag.append(loop.time() - before - interval_s)


async def cpu_slices(meter: CpuMeter, seconds: float, slice_s: float = 5.0) -> list[float]:
    """Server (and database) CPU seconds per second in consecutive slices."""
    rates = []
    end = time.perf_counter() + seconds
    reading = await meter.read()
    while (left := end - time.perf_counter()) > 0.01:
        await asyncio.sleep(min(slice_s, left))
        previous, reading = reading, await meter.read()
        rate = reading.rates_since(previous)
        rates.append(rate["server_and_database"] or rate["server"] or 0.0)
    return rates


async def cpu_load(
    server: ServerUnderTest,
    meter: CpuMeter,
    pop: Population,
    sizes: LiveSizes,
    ws_http: aiohttp.ClientSession,
    mode: str,
    settle_s: float,
) -> dict[str, Any]:
    stats = LoadStats()
    everyone_connected = asyncio.Event()

    def connected() -> None:
        stats.connected += 1
        if stats.connected == len(pop.users):
            everyone_connected.set()

    gate = asyncio.Semaphore(sizes.connect_concurrency)
    tasks: list[asyncio.Task[None]] = [asyncio.create_task(watch_loop_lag(stats))]
    started = time.perf_counter()
    for index, user in enumerate(pop.users):
        if mode == "stream":
            # First pings spread evenly over one interval.
            offset = sizes.ping_interval_s * index / len(pop.users)
            job = stream_client(ws_http, server, user, pop, stats, sizes, offset, gate, connected)
        else:
            job = sync_client(user, pop, stats)
        tasks.append(asyncio.create_task(job))
    try:
        if mode == "stream":
            try:
                await asyncio.wait_for(everyone_connected.wait(), CONNECT_TIMEOUT_SECONDS)
            except TimeoutError:
                if stats.connected == 0:
                    raise RuntimeError(
                        f"no stream client connected in {CONNECT_TIMEOUT_SECONDS:.0f}s: "
                        f"{dict(stats.error_samples)}"
                    ) from None
        else:
            # A long poll returns only with news: count requests made, not answers.
            stats.connected = len(pop.users)
        connect_s = time.perf_counter() - started
        _log(
            f"{server.name}: load over {mode}: {stats.connected} clients connected in "
            f"{connect_s:.1f}s; settling {settle_s:.0f}s"
        )
        tasks.append(asyncio.create_task(drive_messages(pop, sizes, stats)))
        settle = await cpu_slices(meter, settle_s)
        before = await meter.read()
        stats.counting = True
        window = await cpu_slices(meter, sizes.window_s)
        stats.counting = False
        rates = (await meter.read()).rates_since(before)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    figures: dict[str, Any] = {
        "clients": len(pop.users),
        "connected": stats.connected,
        "connect_seconds": connect_s,
        "settle_seconds": settle_s,
        "window_seconds": rates["seconds"],
        "cpu_per_second": rates["server"],
        "database_cpu_per_second": rates["database"],
        "server_and_database_cpu_per_second": rates["server_and_database"],
        "server_processes": len(process_tree(meter.pid)),
        "cpu_per_second_slices_settle": [round(rate, 3) for rate in settle],
        "cpu_per_second_slices_window": [round(rate, 3) for rate in window],
        "client_cpu_per_second": rates["client"],
        "other_cpu_per_second": rates["other"],
        "client_loop_lag_p99_ms": percentile(stats.loop_lag, 0.99) * 1000
        if stats.loop_lag
        else None,
        "client_loop_lag_max_ms": max(stats.loop_lag, default=0.0) * 1000,
        "presence_events": stats.presence_events,
        "presence_events_whole_phase": stats.presence_events_total,
        "presence_states": dict(stats.presence_states),
        "bodies": stats.bodies,
        "timeline_events": stats.timeline_events,
        "ephemeral_events": stats.ephemeral_events,
        "ephemeral_types": dict(stats.ephemeral_types),
        "pongs": stats.pongs,
        "messages_sent": stats.sent,
        "send_median_ms": statistics.median(stats.send_seconds) * 1000
        if stats.send_seconds
        else None,
        "errors": stats.errors,
        "disconnects": stats.disconnects,
        "close_codes": dict(stats.close_codes),
        "error_samples": dict(stats.error_samples),
    }
    _log(
        f"{server.name}: load over {mode}: CPU {figures['cpu_per_second'] * 100:.1f}% "
        f"(slices {figures['cpu_per_second_slices_window']}), "
        f"{stats.presence_events} presence events, {stats.bodies} bodies, "
        f"{stats.sent} sent, {stats.errors} errors, {stats.disconnects} disconnects"
    )
    return figures


# -- one server, start to finish -----------------------------------------------------------


def adjust_config(server: ServerUnderTest, *, delivery_receipts: bool) -> None:
    """``presence: {enabled: true}`` in the generated config (before the start); with
    ``delivery_receipts`` False, also our ``delivery_receipts: {enabled: false}`` (Synapse
    has no such receipts: a run without them shows what they cost)."""
    path = server.workdir / "homeserver.yaml"
    config = yaml.safe_load(path.read_text())
    config["presence"] = {"enabled": True}
    if server.key == "ours" and not delivery_receipts:
        config["delivery_receipts"] = {"enabled": False}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


async def run_server(server: ServerUnderTest, sizes: LiveSizes, *, stream: bool) -> dict[str, Any]:
    assert server.pid is not None
    backends = None
    if server.database.engine == "psycopg2":
        backends = await asyncio.to_thread(DatabaseBackends, server.database)
    try:
        return await _run_phases(server, CpuMeter(server.pid, backends), sizes, stream=stream)
    finally:
        if backends is not None:
            backends.close()


async def _run_phases(
    server: ServerUnderTest, meter: CpuMeter, sizes: LiveSizes, *, stream: bool
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    phases: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = []
    connections = sizes.users + 200
    ws_connector = aiohttp.TCPConnector(limit=0)
    ws_timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with (
        client.session(connections) as http,
        aiohttp.ClientSession(connector=ws_connector, timeout=ws_timeout) as ws_http,
    ):
        started = time.perf_counter()
        try:
            pop = await setup(server, http, sizes)
        except Exception as error:
            return {"setup": {"error": _failure(server, "setup", error)}}
        results["setup"] = {
            "seconds": time.perf_counter() - started,
            "room_sizes": {"min": min(pop.room_sizes), "max": max(pop.room_sizes)},
        }
        _log(f"{server.name}: set up in {results['setup']['seconds']:.1f}s")
        modes = ["sync", "stream"] if stream else ["sync"]
        for mode in modes:
            phases.append(
                (
                    f"wakeup_{mode}",
                    partial(latency_series, server, meter, pop, sizes, ws_http, mode),
                )
            )
        for index, mode in enumerate(modes):
            # Users come online in the first load phase and stay online into the next
            # (it connects within seconds, well inside the 30 s before a user without
            # a connection goes offline).  Coming online is followed by a wave of
            # presence changes 60 s later (last_active_granularity: every user's
            # currently_active turns false at once), so the first phase settles past it.
            settle_s = sizes.online_settle_s if index == 0 else sizes.settle_s
            phases.append(
                (
                    f"load_{mode}",
                    partial(cpu_load, server, meter, pop, sizes, ws_http, mode, settle_s),
                )
            )
        for name, phase in phases:
            await asyncio.sleep(PHASE_GAP_SECONDS)
            try:
                results[name] = await phase()
            except Exception as error:
                results[name] = {"error": _failure(server, name, error)}
                continue
            if name.startswith("wakeup"):
                _log(
                    f"{server.name}: {name}: median {results[name]['median_ms']:.1f} ms, "
                    f"p95 {results[name]['p95_ms']:.1f} ms"
                )
    return results


def _failure(server: ServerUnderTest, what: str, error: BaseException) -> str:
    _log(f"{server.name}: {what} failed: {_describe(error)}\n--- last lines of its log ---")
    _log(server.log_tail(20))
    return _describe(error)


# -- the report ----------------------------------------------------------------------------

#: (server key, transport) of each column.
COLUMNS = (("ours", "sync"), ("ours", "stream"), ("synapse", "sync"), ("synapse", "stream"))


@attrs.frozen
class Row:
    label: str
    phase: str  # "wakeup" or "load"
    figure: str
    unit: str
    #: Show Synapse / ours (lower is better: >1 means ours is better).
    ratio: bool


def table_rows(sizes: LiveSizes, *, postgres: bool) -> list[Row]:
    rows = [
        Row("send -> wake-up, p50", "wakeup", "median_ms", "ms", True),
        Row("send -> wake-up, p95", "wakeup", "p95_ms", "ms", True),
        Row(f"server CPU, {sizes.users:,} online users", "load", "cpu_per_second", "%", True),
        Row("presence events received in window", "load", "presence_events", "", False),
        Row("sync bodies/frames received in window", "load", "bodies", "", False),
        Row("  presence events, whole phase", "load", "presence_events_whole_phase", "", False),
        Row("timeline events received in window", "load", "timeline_events", "", False),
        Row("ephemeral events received in window", "load", "ephemeral_events", "", False),
        Row("messages sent in window", "load", "messages_sent", "", False),
        Row("send latency under load, p50", "load", "send_median_ms", "ms", False),
        Row("client errors (whole phase)", "load", "errors", "", False),
        Row("client disconnects (whole phase)", "load", "disconnects", "", False),
        Row("load generator CPU", "load", "client_cpu_per_second", "%", False),
        Row("load generator loop lag, p99", "load", "client_loop_lag_p99_ms", "ms", False),
        Row("other processes' CPU, window", "load", "other_cpu_per_second", "%", False),
        Row("other processes' CPU, wake-ups", "wakeup", "other_cpu_per_second", "%", False),
    ]
    if postgres:
        rows[3:3] = [
            Row("  its PostgreSQL backends' CPU", "load", "database_cpu_per_second", "%", False),
            Row(
                "  server + PostgreSQL CPU", "load", "server_and_database_cpu_per_second", "%", True
            ),
        ]
    return rows


def _value(results: dict[str, Any], server: str, mode: str, row: Row) -> float | None:
    figures = results.get(server, {}).get(f"{row.phase}_{mode}", {})
    value = figures.get(row.figure)
    return float(value) if isinstance(value, int | float) else None


def _cell(results: dict[str, Any], server: str, mode: str, row: Row) -> str:
    if (server, mode) == ("synapse", "stream"):
        return "n/a"
    value = _value(results, server, mode, row)
    if value is None:
        phase = results.get(server, {}).get(f"{row.phase}_{mode}")
        return "error" if isinstance(phase, dict) and "error" in phase else "-"
    if row.unit == "%":
        return f"{value * 100:.1f} %"
    if row.unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.0f}"


def ratios(results: dict[str, Any], rows: list[Row]) -> dict[str, float]:
    """Synapse over /sync divided by each of our series (>1: ours better)."""
    out = {}
    for row in rows:
        theirs = _value(results, "synapse", "sync", row)
        for mode in ("sync", "stream"):
            ours = _value(results, "ours", mode, row)
            if row.ratio and ours and theirs is not None:
                out[f"{row.phase}.{row.figure}.synapse_sync_over_ours_{mode}"] = theirs / ours
    return out


def table(results: dict[str, Any], rows: list[Row]) -> str:
    computed = ratios(results, rows)
    header = (
        f"{'figure':<40} {'ours /sync':>12} {'ours stream':>12} {'Synapse /sync':>14} "
        f"{'Synapse str.':>12} {'Syn/ours sync':>14} {'Syn/ours str.':>14}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = [_cell(results, server, mode, row) for server, mode in COLUMNS]
        shown = []
        for mode in ("sync", "stream"):
            ratio = computed.get(f"{row.phase}.{row.figure}.synapse_sync_over_ours_{mode}")
            shown.append(f"{ratio:.2f}x" if ratio is not None else "-")
        lines.append(
            f"{row.label:<40} {cells[0]:>12} {cells[1]:>12} {cells[2]:>14} {cells[3]:>12} "
            f"{shown[0]:>14} {shown[1]:>14}"
        )
    for server, per in results.items():
        for phase, figures in per.items():
            if isinstance(figures, dict) and "error" in figures:
                lines.append(f"{server}, {phase}: {figures['error']}")
            elif isinstance(figures, dict) and figures.get("error_samples"):
                for text, count in figures["error_samples"].items():
                    lines.append(f"{server}, {phase}: {count} x {text}")
            if isinstance(figures, dict) and figures.get("close_codes"):
                lines.append(f"{server}, {phase}: close codes {figures['close_codes']}")
        lines.extend(log_problem_lines(server, per.get("log_problems", {})))
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = LiveSizes()
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_live",
        description="Live delivery latency and online-user CPU: our server vs Synapse.",
    )
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--only", choices=("both", "ours", "synapse"), default="both")
    parser.add_argument(
        "--no-stream", action="store_true", help="skip the WebSocket series (ours over /sync only)"
    )
    parser.add_argument(
        "--no-delivery-receipts",
        action="store_true",
        help="switch off our delivered receipts (on by default, as in production)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--log-level", default="WARNING", help="servers' log level")
    parser.add_argument(
        "--workdir", type=Path, help="keep configs, databases and logs in this (new) folder"
    )
    sizes = parser.add_argument_group("sizes")
    sizes.add_argument("--users", type=int, default=defaults.users, help="online users")
    sizes.add_argument("--rooms", type=int, default=defaults.rooms, help="rooms they share")
    sizes.add_argument("--room-size", type=int, default=defaults.room_size, help="members, about")
    sizes.add_argument("--messages", type=int, default=defaults.messages, help="timed wake-ups")
    sizes.add_argument("--warmup", type=int, default=defaults.warmup, help="untimed wake-ups")
    sizes.add_argument(
        "--pause-ms", type=int, default=defaults.pause_ms, help="pause before each wake-up send"
    )
    sizes.add_argument("--window", type=float, default=defaults.window_s, help="CPU window, s")
    sizes.add_argument(
        "--settle",
        type=float,
        default=defaults.settle_s,
        help="load before the window when the users are already online, s",
    )
    sizes.add_argument(
        "--online-settle",
        type=float,
        default=defaults.online_settle_s,
        help="load before the window of a server's first load phase (users come online), s",
    )
    sizes.add_argument(
        "--rate", type=float, default=defaults.message_rate, help="messages/s under load"
    )
    sizes.add_argument(
        "--ping-interval", type=float, default=defaults.ping_interval_s, help="stream pings, s"
    )
    sizes.add_argument(
        "--setup-concurrency", type=int, default=defaults.setup_concurrency, help="in flight"
    )
    sizes.add_argument(
        "--room-version", default=defaults.room_version, help="'default': the server's own"
    )
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> LiveSizes:
    return LiveSizes(
        users=args.users,
        rooms=args.rooms,
        room_size=args.room_size,
        messages=args.messages,
        warmup=args.warmup,
        pause_ms=args.pause_ms,
        window_s=args.window,
        settle_s=args.settle,
        online_settle_s=args.online_settle,
        message_rate=args.rate,
        ping_interval_s=args.ping_interval,
        setup_concurrency=max(1, args.setup_concurrency),
        room_version=None if args.room_version == "default" else args.room_version,
    )


def raise_file_limit() -> None:
    """Every client holds a socket: the soft limit goes up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sizes = sizes_from(args)
    assign_rooms(sizes.users, sizes.rooms, sizes.room_size)  # validates the sizes
    raise_file_limit()
    wanted = ["ours", "synapse"] if args.only == "both" else [args.only]
    results: dict[str, Any] = {}
    versions: dict[str, str] = {}
    began = time.perf_counter()
    with ExitStack() as stack:
        for key, server in each_server(
            stack,
            wanted,
            bench="live",
            workdir=args.workdir,
            postgres=args.postgres,
            log_level=args.log_level,
            adjust=partial(adjust_config, delivery_receipts=not args.no_delivery_receipts),
        ):
            versions[key] = server.version
            results[key] = asyncio.run(
                run_server(server, sizes, stream=key == "ours" and not args.no_stream)
            )
            server.stop()
            results[key]["log_problems"] = log_problems(server)
    rows = table_rows(sizes, postgres=args.postgres)
    engine = "PostgreSQL" if args.postgres else "SQLite"
    room_sizes = assign_rooms(sizes.users, sizes.rooms, sizes.room_size)
    print()
    print(
        f"live delivery and online users, {engine}, {os.cpu_count()} CPUs; "
        + ", ".join(f"{'ours' if key == 'ours' else 'Synapse'} {v}" for key, v in versions.items())
    )
    print(
        f"wake-up: {sizes.messages} messages after {sizes.warmup} untimed; load: "
        f"{sizes.users} users in {sizes.rooms} rooms of "
        f"{min(map(len, room_sizes))}-{max(map(len, room_sizes))} members, "
        f"{sizes.message_rate:g} msg/s, {sizes.window_s:g} s window after "
        f"{sizes.online_settle_s:g} s (first load phase) or {sizes.settle_s:g} s; "
        f"CPU % is of one core; Syn/ours: Synapse /sync over ours (>1: ours better)"
    )
    if args.no_delivery_receipts:
        print("ours with delivery_receipts: {enabled: false}")
    print(table(results, rows))
    _log(f"whole run: {time.perf_counter() - began:.0f}s")
    if args.json is not None:
        record = {
            "engine": engine,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": versions,
            "sizes": attrs.asdict(sizes),
            "ours_delivery_receipts": not args.no_delivery_receipts,
            "results": results,
            "synapse_over_ours": ratios(results, rows),
        }
        write_json(args.json, record)
        print(f"wrote {args.json}")
    failed = any(
        isinstance(figures, dict) and "error" in figures
        for per in results.values()
        for figures in per.values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
