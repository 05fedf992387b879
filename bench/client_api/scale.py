"""The scale workload (``--workloads scale``): many users, big rooms, a long backlog.

Everything happens inside the one workload, on each server in turn; its accounts and
rooms are made there (untimed, ``setup_concurrency`` requests in flight), so runs
without it do not pay for them.

1. Membership: 200 users; 10 rooms of 20 and one room of all 200 are created (by
   different users), then every user joins its small room and the big room (389
   joins; the creators are already in).  Database bytes per membership event: the
   database's growth over those joins divided by their number.
2. Sends: 1,600 messages, 16 requests in flight; message k is sent by user k mod 200,
   alternately into its small room and into the big room.  Messages per second over
   the whole burst, median and p95 of each request's round trip, and database bytes
   per message (growth over the burst / messages).  16 untimed messages go first.
3. Joins: 20 new users join the 200-member room one after another (median of each
   ``POST /join``); then a new room gets 1,000 members (the 200 plus 800 new users)
   and the same 20 join it one after another (median).
4. Backlog: a reader is in 50 rooms, each with 40 messages sent by another user after
   the reader joined (none read).  Initial ``/sync`` (no filter): one cold call, then
   the median of 5.  Incremental: another user sends one message into one of the rooms,
   then the reader's ``/sync?since=<previous next_batch>`` is timed until it returns
   that message; median of 10 after one untimed.

Database size is :func:`bench.client_api.databases.size_bytes`, read while the server
runs, after a pause so background writes (Synapse's stats and user directory) land.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from functools import partial
from typing import Any
from urllib.parse import quote

import attrs

from bench.client_api import databases
from bench.client_api.client import CLIENT_PREFIX, Client
from bench.client_api.workloads import (
    ServerWorkloads,
    bounded,
    check_stored,
    latency_figures,
    percentile,
)

#: Pause before each database size reading.
SETTLE_SECONDS = 2.0


@attrs.frozen
class ScaleSizes:
    users: int = 200
    small_room_size: int = 20
    messages: int = 1600
    in_flight: int = 16
    joiners: int = 20
    large_room_members: int = 1000
    reader_rooms: int = 50
    reader_room_messages: int = 40
    initial_sync_repeats: int = 5
    incremental_sync_trials: int = 10


def _log(server: str, message: str) -> None:
    print(f"{server}: scale: {message}", file=sys.stderr, flush=True)


class Scale:
    """One server's run of the scale workload."""

    def __init__(self, runner: ServerWorkloads, sizes: ScaleSizes) -> None:
        self.runner = runner
        self.sizes = sizes
        self.concurrency = runner.sizes.setup_concurrency
        self.room_version = runner.sizes.room_version
        self._count = 0

    def log(self, message: str) -> None:
        _log(self.runner.server.name, message)

    async def db_size(self) -> int:
        await asyncio.sleep(SETTLE_SECONDS)
        return await asyncio.to_thread(databases.size_bytes, self.runner.server.database)

    async def _user(self) -> Client:
        self._count += 1
        anonymous = self.runner.anonymous
        account = await anonymous.register_with_secret(
            f"scale_{self._count}", self.runner.server.shared_secret
        )
        return anonymous.as_user(account)

    async def users(self, count: int) -> list[Client]:
        return await bounded(self.concurrency, [self._user for _ in range(count)])

    async def create_rooms(self, creators: list[Client], label: str) -> list[str]:
        """One room per creator (all different users: two createRoom calls by one user
        in the same millisecond would make the same v12 room ID)."""
        return await bounded(
            self.concurrency,
            [
                partial(creator.create_room, room_version=self.room_version, name=f"{label} {i}")
                for i, creator in enumerate(creators)
            ],
        )

    async def join_all(self, pairs: list[tuple[Client, str]]) -> None:
        await bounded(self.concurrency, [partial(user.join, room) for user, room in pairs])

    async def timed_joins(self, joiners: list[Client], room: str) -> list[float]:
        timings = []
        for joiner in joiners:
            start = time.perf_counter()
            await joiner.join(room)
            timings.append(time.perf_counter() - start)
        return timings

    async def member_count(self, user: Client, room: str) -> int:
        path = f"{CLIENT_PREFIX}/rooms/{quote(room, safe='')}/joined_members"
        return len((await user.call("GET", path))[0]["joined"])

    async def run(self) -> dict[str, Any]:
        sizes = self.sizes
        figures: dict[str, Any] = {}
        started = time.perf_counter()

        # 1. membership
        users = await self.users(sizes.users)
        groups = [
            users[first : first + sizes.small_room_size]
            for first in range(0, sizes.users, sizes.small_room_size)
        ]
        small_rooms = await self.create_rooms([group[0] for group in groups], "small")
        big_creator = users[1]
        big_room = (await self.create_rooms([big_creator], "everyone"))[0]
        small_room_of = {}
        pairs = []
        for group, room in zip(groups, small_rooms, strict=True):
            for user in group:
                small_room_of[user.user_id] = room
                if user is not group[0]:
                    pairs.append((user, room))
        pairs.extend((user, big_room) for user in users if user is not big_creator)
        before = await self.db_size()
        await self.join_all(pairs)
        after = await self.db_size()
        figures["membership_events"] = len(pairs)
        figures["bytes_per_membership"] = (after - before) / len(pairs)
        figures["kb_per_membership"] = figures["bytes_per_membership"] / 1000
        self.log(f"{len(pairs)} joins, {figures['kb_per_membership']:.2f} KB each")

        # 2. sends
        async def send(number: int, label: str) -> float:
            user = users[number % len(users)]
            room = small_room_of[user.user_id] if number % 2 == 0 else big_room
            start = time.perf_counter()
            await user.send_text(room, f"{label} {number} from {user.user_id}")
            return time.perf_counter() - start

        await bounded(sizes.in_flight, [partial(send, n, "warm-up") for n in range(16)])
        before = await self.db_size()
        start = time.perf_counter()
        latencies = await bounded(
            sizes.in_flight, [partial(send, n, "scale") for n in range(sizes.messages)]
        )
        elapsed = time.perf_counter() - start
        after = await self.db_size()
        await check_stored(users[0], big_room, 16 // 2 + sizes.messages // 2)
        figures.update(
            {
                "messages": sizes.messages,
                "messages_per_second": sizes.messages / elapsed,
                "send_median_ms": statistics.median(latencies) * 1000,
                "send_p95_ms": percentile(latencies, 0.95) * 1000,
                "bytes_per_message": (after - before) / sizes.messages,
                "db_bytes_after_sends": after,
            }
        )
        figures["kb_per_message"] = figures["bytes_per_message"] / 1000
        self.log(
            f"{figures['messages_per_second']:.0f} msg/s, "
            f"{figures['kb_per_message']:.2f} KB/message"
        )

        # 3. joins into a 200- and a 1,000-member room
        joiners = await self.users(sizes.joiners)
        members = await self.member_count(users[0], big_room)
        figures["join_200_members_before"] = members
        join_200 = latency_figures(await self.timed_joins(joiners, big_room))
        figures["join_200_median_ms"] = join_200["median_ms"]
        figures["join_200_p95_ms"] = join_200["p95_ms"]
        extra = await self.users(sizes.large_room_members - sizes.users)
        large_creator = users[2]
        large_room = (await self.create_rooms([large_creator], "thousand"))[0]
        await self.join_all(
            [(user, large_room) for user in [*users, *extra] if user is not large_creator]
        )
        figures["join_1000_members_before"] = await self.member_count(users[0], large_room)
        join_1000 = latency_figures(await self.timed_joins(joiners, large_room))
        figures["join_1000_median_ms"] = join_1000["median_ms"]
        figures["join_1000_p95_ms"] = join_1000["p95_ms"]
        self.log(
            f"join {join_200['median_ms']:.1f} ms ({members} members), "
            f"{join_1000['median_ms']:.1f} ms ({figures['join_1000_members_before']} members)"
        )

        # 4. a reader with an unread backlog
        figures.update(await self.backlog(users))
        figures["seconds"] = time.perf_counter() - started
        return figures

    async def backlog(self, users: list[Client]) -> dict[str, Any]:
        sizes = self.sizes
        reader = await self._user()
        # Creators 3, 7, 11, ...: none of them created a room above.
        creators = [users[(3 + 4 * i) % len(users)] for i in range(sizes.reader_rooms)]
        rooms = await self.create_rooms(creators, "backlog")
        await self.join_all([(reader, room) for room in rooms])

        async def fill(creator: Client, room: str) -> None:
            for number in range(sizes.reader_room_messages):
                await creator.send_text(room, f"unread {number}")

        await bounded(
            self.concurrency,
            [partial(fill, creator, room) for creator, room in zip(creators, rooms, strict=True)],
        )
        await asyncio.sleep(SETTLE_SECONDS)

        start = time.perf_counter()
        body, size = await reader.sync()
        cold = time.perf_counter() - start
        joined = body.get("rooms", {}).get("join", {})
        if not set(rooms) <= set(joined):
            raise RuntimeError(f"initial /sync lists {len(set(rooms) & set(joined))} of 50 rooms")
        timings = []
        for _ in range(sizes.initial_sync_repeats):
            start = time.perf_counter()
            body, size = await reader.sync()
            timings.append(time.perf_counter() - start)
        since = str(body["next_batch"])
        unread = sum(
            joined[room].get("unread_notifications", {}).get("notification_count", 0)
            for room in rooms
        )

        incremental = []
        extra_polls = 0
        for trial in range(1 + sizes.incremental_sync_trials):
            index = trial % len(rooms)
            event_id = await creators[index].send_text(rooms[index], f"new {trial}")
            start = time.perf_counter()
            while True:
                update = (await reader.sync(since=since, timeout_ms=30_000))[0]
                since = str(update["next_batch"])
                timeline = (
                    update.get("rooms", {})
                    .get("join", {})
                    .get(rooms[index], {})
                    .get("timeline", {})
                )
                if any(event.get("event_id") == event_id for event in timeline.get("events", [])):
                    break
                extra_polls += 1
            if trial > 0:
                incremental.append(time.perf_counter() - start)
        initial = latency_figures(timings)
        return {
            "backlog_initial_sync_median_ms": initial["median_ms"],
            "backlog_initial_sync_cold_ms": cold * 1000,
            "backlog_initial_sync_bytes": size,
            "backlog_notification_count": unread,
            "backlog_incremental_sync_median_ms": statistics.median(incremental) * 1000,
            "backlog_incremental_sync_p95_ms": percentile(incremental, 0.95) * 1000,
            "backlog_incremental_extra_polls": extra_polls,
        }


async def scale(runner: ServerWorkloads) -> dict[str, Any]:
    """The ``scale`` workload on one server."""
    return await Scale(runner, ScaleSizes()).run()
