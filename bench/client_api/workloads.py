"""The measured workloads, run the same way against each server.

(a) ``send_latency``: one user, one room, N sequential
    ``PUT /rooms/{id}/send/m.room.message/{txn}``; median and p95 of each request's
    round trip.
(b) ``throughput_one_room`` / ``throughput_many_rooms``: S users all sending at once
    (each one request after another), into one shared room or each into its own
    room; messages per second over the whole burst.
(c) ``initial_sync``: a user in R rooms (each with a few members and some messages)
    does ``GET /sync`` with no ``since`` and no filter; median of several.
(d) ``sync_wakeup``: B long-polls ``/sync?since=...&timeout=30000``; A sends into
    their shared room; the time from just before A's request to B's sync returning
    with that event (re-polling if a sync returns first without it).
(e) ``create_room``: one user creates N private groups one after another, each
    with a name, a topic and one invitee (``POST /createRoom``); median and p95.

Everything a workload needs (accounts, rooms, history) is made in :meth:`setup`,
before any timing, so setup cost never leaks into a figure.  Every workload starts
with a short untimed warm-up (connections opened, caches filled).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import aiohttp
import attrs

from bench.client_api.client import Account, Client
from bench.client_api.servers import ServerUnderTest

T = TypeVar("T")

LONG_POLL_MS = 30_000
#: How long B's long poll is given to reach the server and park before A sends.
PARK_SECONDS = 0.2


@attrs.frozen
class Sizes:
    """The knobs of every workload (the command's flags)."""

    send_count: int = 300
    warmup: int = 10
    senders: int = 20
    messages_per_sender: int = 25
    sync_rooms: int = 50
    sync_room_members: int = 3
    sync_room_messages: int = 10
    sync_repeats: int = 10
    wakeup_trials: int = 50
    create_count: int = 50
    room_version: str | None = "12"
    setup_concurrency: int = 4


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` 0.95 for p95)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def latency_figures(seconds: Sequence[float]) -> dict[str, float]:
    ms = [value * 1000 for value in seconds]
    return {
        "median_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 0.95),
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "count": len(ms),
    }


async def bounded(limit: int, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run ``jobs`` with at most ``limit`` in flight; results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))


async def check_stored(reader: Client, room_id: str, expected: int) -> None:
    """Untimed: the room's history really holds the messages that were sent."""
    found = await reader.count_messages(room_id)
    if found != expected:
        raise RuntimeError(f"{room_id} holds {found} messages, {expected} were sent")


def _timeline_event_ids(sync_body: dict[str, Any], room_id: str) -> set[str]:
    room = sync_body.get("rooms", {}).get("join", {}).get(room_id, {})
    return {event.get("event_id") for event in room.get("timeline", {}).get("events", [])}


class ServerWorkloads:
    """The workloads' accounts and rooms on one server, and the timed runs."""

    def __init__(self, server: ServerUnderTest, http: aiohttp.ClientSession, sizes: Sizes):
        self.server = server
        self.sizes = sizes
        self.anonymous = Client(http, server.base_url)
        self._users = 0
        #: Messages already sent into a room by earlier runs (for :func:`check_stored`).
        self._before: dict[str, int] = {}

    async def _user(self, role: str) -> Client:
        self._users += 1
        account: Account = await self.anonymous.register_with_secret(
            f"bench_{role}_{self._users}", self.server.shared_secret
        )
        return self.anonymous.as_user(account)

    async def _users_for(self, role: str, count: int) -> list[Client]:
        return await bounded(
            self.sizes.setup_concurrency, [partial(self._user, role) for _ in range(count)]
        )

    async def _room(self, creator: Client, name: str, members: Sequence[Client] = ()) -> str:
        room_id = await creator.create_room(room_version=self.sizes.room_version, name=name)
        for member in members:
            await member.join(room_id)
        return room_id

    # -- setup -------------------------------------------------------------------------

    async def setup(self) -> None:
        sizes = self.sizes
        # (a)
        self.latency_user = await self._user("latency")
        self.latency_room = await self._room(self.latency_user, "latency")
        # (b)
        self.senders = await self._users_for("sender", sizes.senders)
        self.shared_room = await self._room(self.senders[0], "shared", self.senders[1:])
        self.own_rooms = await bounded(
            sizes.setup_concurrency,
            [partial(self._room, sender, "own") for sender in self.senders],
        )
        # (c)
        self.sync_user = await self._user("sync")
        mates = await self._users_for("mate", max(0, sizes.sync_room_members - 1))
        # Rooms are made by the mates in turn (by the user itself when alone); one
        # creator makes its rooms one after another, the creators work side by side
        # (two createRoom calls by one user in the same millisecond would build the
        # same v12 create event, hence the same room ID, which is not this workload).
        creators = mates or [self.sync_user]
        self.sync_rooms = [""] * sizes.sync_rooms

        async def make_rooms(first: int, creator: Client) -> None:
            for index in range(first, sizes.sync_rooms, len(creators)):
                self.sync_rooms[index] = await self._sync_room(index, creator, mates)

        await bounded(
            sizes.setup_concurrency,
            [partial(make_rooms, first, creator) for first, creator in enumerate(creators)],
        )
        # (d)
        self.wake_sender = await self._user("wake_a")
        self.wake_receiver = await self._user("wake_b")
        self.wake_room = await self._room(self.wake_sender, "wake-up", [self.wake_receiver])
        # (e)
        self.group_creator = await self._user("creator")
        self.group_invitee = await self._user("invitee")

    async def _sync_room(self, index: int, creator: Client, mates: Sequence[Client]) -> str:
        members = [self.sync_user, *mates]
        room_id = await self._room(
            creator, f"sync {index}", [member for member in members if member is not creator]
        )
        for number in range(self.sizes.sync_room_messages):
            sender = members[number % len(members)]
            await sender.send_text(room_id, f"history message {number} in room {index}")
        return room_id

    # -- (a) -----------------------------------------------------------------------------

    async def send_latency(self) -> dict[str, float]:
        user, room = self.latency_user, self.latency_room
        for number in range(self.sizes.warmup):
            await user.send_text(room, f"warm-up {number}")
        timings = []
        for number in range(self.sizes.send_count):
            start = time.perf_counter()
            await user.send_text(room, f"latency message {number}")
            timings.append(time.perf_counter() - start)
        await check_stored(user, room, self.sizes.warmup + self.sizes.send_count)
        return latency_figures(timings)

    # -- (b) -----------------------------------------------------------------------------

    async def _burst(self, rooms: Sequence[str]) -> dict[str, float]:
        async def send_all(sender: Client, room: str, count: int, label: str) -> None:
            for number in range(count):
                await sender.send_text(room, f"{label} {number} from {sender.user_id}")

        pairs = list(zip(self.senders, rooms, strict=True))
        # Warm-up: one message each, at once, so every sender has its connection open.
        await asyncio.gather(*(send_all(sender, room, 1, "warm-up") for sender, room in pairs))
        count = self.sizes.messages_per_sender
        start = time.perf_counter()
        await asyncio.gather(*(send_all(sender, room, count, "burst") for sender, room in pairs))
        elapsed = time.perf_counter() - start
        total = count * len(pairs)
        # Untimed check that every message (warm-up included) is in its room's history.
        readers = {room: sender for sender, room in pairs}
        for room, senders_in_room in Counter(room for _, room in pairs).items():
            self._before[room] = self._before.get(room, 0) + senders_in_room * (count + 1)
            await check_stored(readers[room], room, self._before[room])
        return {"messages_per_second": total / elapsed, "messages": total, "seconds": elapsed}

    async def throughput_one_room(self) -> dict[str, float]:
        return await self._burst([self.shared_room] * len(self.senders))

    async def throughput_many_rooms(self) -> dict[str, float]:
        return await self._burst(self.own_rooms)

    # -- (c) -----------------------------------------------------------------------------

    async def initial_sync(self) -> dict[str, float]:
        user = self.sync_user
        start = time.perf_counter()
        body, size = await user.sync()
        cold = time.perf_counter() - start
        joined = body.get("rooms", {}).get("join", {})
        missing = set(self.sync_rooms) - set(joined)
        if missing:
            raise RuntimeError(
                f"initial /sync lists {len(joined)} joined rooms, "
                f"{len(missing)} of the {len(self.sync_rooms)} expected are missing"
            )
        timings = []
        for _ in range(self.sizes.sync_repeats):
            start = time.perf_counter()
            await user.sync()
            timings.append(time.perf_counter() - start)
        figures = latency_figures(timings)
        figures.update(
            {
                "cold_ms": cold * 1000,
                "rooms": len(joined),
                "timeline_events": sum(
                    len(room.get("timeline", {}).get("events", [])) for room in joined.values()
                ),
                "state_events": sum(
                    len(room.get("state", {}).get("events", [])) for room in joined.values()
                ),
                "response_bytes": size,
            }
        )
        return figures

    # -- (d) -----------------------------------------------------------------------------

    async def sync_wakeup(self) -> dict[str, float]:
        sender, receiver, room = self.wake_sender, self.wake_receiver, self.wake_room
        since = str((await receiver.sync())[0]["next_batch"])
        warmup = min(3, self.sizes.warmup)
        wakeups: list[float] = []
        sends: list[float] = []
        extra_polls = 0
        for trial in range(warmup + self.sizes.wakeup_trials):
            # Park B's long poll; if it comes back on its own (some other update), re-park.
            poll = asyncio.ensure_future(receiver.sync(since=since, timeout_ms=LONG_POLL_MS))
            await asyncio.sleep(PARK_SECONDS)
            while poll.done():
                since = str(poll.result()[0]["next_batch"])
                poll = asyncio.ensure_future(receiver.sync(since=since, timeout_ms=LONG_POLL_MS))
                await asyncio.sleep(PARK_SECONDS)
            start = time.perf_counter()
            event_id = await sender.send_text(room, f"wake up {trial}")
            sent = time.perf_counter()
            polls = 0
            while True:
                body = (await poll)[0]
                since = str(body["next_batch"])
                polls += 1
                if event_id in _timeline_event_ids(body, room):
                    break
                poll = asyncio.ensure_future(receiver.sync(since=since, timeout_ms=LONG_POLL_MS))
            woke = time.perf_counter()
            if trial >= warmup:
                wakeups.append(woke - start)
                sends.append(sent - start)
                extra_polls += polls - 1
        figures = latency_figures(wakeups)
        figures["send_median_ms"] = statistics.median(sends) * 1000
        figures["extra_polls"] = extra_polls
        return figures

    # -- (e) -----------------------------------------------------------------------------

    async def create_room(self) -> dict[str, float]:
        creator, invitee = self.group_creator, self.group_invitee

        async def create(label: str) -> str:
            return await creator.create_room(
                room_version=self.sizes.room_version,
                name=label,
                preset="private_chat",
                topic=f"the topic of {label}",
                invite=[invitee.user_id],
            )

        for number in range(self.sizes.warmup):
            await create(f"warm-up group {number}")
        timings = []
        created = []
        for number in range(self.sizes.create_count):
            start = time.perf_counter()
            created.append(await create(f"group {number}"))
            timings.append(time.perf_counter() - start)
        joined = set(await creator.joined_rooms())
        if len(set(created)) != len(created) or not set(created) <= joined:
            raise RuntimeError("createRoom answered with rooms the creator is not in")
        return latency_figures(timings)


#: Workload name -> the method that runs it, in the order they run.
WORKLOADS: dict[str, Callable[[ServerWorkloads], Awaitable[dict[str, float]]]] = {
    "send_latency": ServerWorkloads.send_latency,
    "throughput_one_room": ServerWorkloads.throughput_one_room,
    "throughput_many_rooms": ServerWorkloads.throughput_many_rooms,
    "initial_sync": ServerWorkloads.initial_sync,
    "sync_wakeup": ServerWorkloads.sync_wakeup,
    "create_room": ServerWorkloads.create_room,
}
