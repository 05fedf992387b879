"""Benchmark: the client-server API over real HTTP, our server vs Synapse.

Starts both servers (each with a freshly generated config and its own fresh
database: SQLite by default, PostgreSQL with ``--postgres``) on free loopback ports,
runs the same workloads against each with an aiohttp client, prints a table and
optionally writes the figures as JSON.  Both servers are stopped (and PostgreSQL
databases dropped) at the end, also after an error or Ctrl-C.

(a) message send latency: one user, one room, sequential sends (median, p95);
(b) send throughput: 20 users sending at once into one room, and into 20 rooms;
(c) initial /sync (no since, no filter) of a user in 50 rooms with ~10 messages each;
(d) /sync wake-up: from just before A sends to B's long poll returning the event;
(e) /createRoom of private groups;
scale (only with ``--workloads scale``): 200 users, 16 sends in flight, database bytes
per message and membership, joins into 200- and 1,000-member rooms, /sync of an
unread backlog (``bench/client_api/scale.py``).

See ``bench/client_api/workloads.py`` for the exact workloads.  Run from the
repository root:

    .venv/bin/python -m bench.bench_client_api [--postgres] [--only ours|synapse]
        [--json results.json] [size flags, see --help]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs

from bench.client_api import client, databases, report
from bench.client_api.scale import scale
from bench.client_api.servers import ServerUnderTest, prepare_ours, prepare_synapse
from bench.client_api.workloads import WORKLOADS, ServerWorkloads, Sizes

#: Pause after setup and between measurements, so one server's background work
#: (Synapse's stats and user-directory updates, say) settles before the next timing.
SETTLE_SECONDS = 1.0

#: Every workload by name.  The default run is :data:`WORKLOADS`; ``scale`` makes its
#: own accounts and rooms and takes minutes, so it runs only when named.
ALL_WORKLOADS: dict[str, Callable[[ServerWorkloads], Awaitable[dict[str, Any]]]] = {
    **WORKLOADS,
    "scale": scale,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = Sizes()
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_client_api",
        description="Client-API benchmark: our server vs Synapse over HTTP.",
    )
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--only", choices=("both", "ours", "synapse"), default="both")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--log-level", default="WARNING", help="both servers' log level (default WARNING)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep configs, databases and logs in this (new) folder instead of a "
        "temporary one that is deleted",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of: {', '.join(ALL_WORKLOADS)} (default: all but scale)",
    )
    sizes = parser.add_argument_group("sizes")
    sizes.add_argument("--send-count", type=int, default=defaults.send_count, help="(a) sends")
    sizes.add_argument("--warmup", type=int, default=defaults.warmup, help="untimed sends first")
    sizes.add_argument("--senders", type=int, default=defaults.senders, help="(b) users")
    sizes.add_argument(
        "--messages-per-sender", type=int, default=defaults.messages_per_sender, help="(b)"
    )
    sizes.add_argument("--sync-rooms", type=int, default=defaults.sync_rooms, help="(c) rooms")
    sizes.add_argument(
        "--sync-room-members",
        type=int,
        default=defaults.sync_room_members,
        help="(c) members per room, the syncing user included",
    )
    sizes.add_argument(
        "--sync-room-messages", type=int, default=defaults.sync_room_messages, help="(c)"
    )
    sizes.add_argument(
        "--sync-repeats", type=int, default=defaults.sync_repeats, help="(c) timed syncs"
    )
    sizes.add_argument("--wakeup-trials", type=int, default=defaults.wakeup_trials, help="(d)")
    sizes.add_argument("--create-count", type=int, default=defaults.create_count, help="(e)")
    sizes.add_argument(
        "--setup-concurrency",
        type=int,
        default=defaults.setup_concurrency,
        help="requests in flight while creating accounts and rooms (1: one at a time)",
    )
    sizes.add_argument(
        "--room-version",
        default=defaults.room_version,
        help="room_version given to createRoom (default %(default)s; 'default' for "
        "each server's own default)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.workloads.split(",")) - set(ALL_WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    return args


def sizes_from(args: argparse.Namespace) -> Sizes:
    return Sizes(
        send_count=args.send_count,
        warmup=args.warmup,
        senders=args.senders,
        messages_per_sender=args.messages_per_sender,
        sync_rooms=args.sync_rooms,
        sync_room_members=args.sync_room_members,
        sync_room_messages=args.sync_room_messages,
        sync_repeats=args.sync_repeats,
        wakeup_trials=args.wakeup_trials,
        create_count=args.create_count,
        room_version=None if args.room_version == "default" else args.room_version,
        setup_concurrency=max(1, args.setup_concurrency),
    )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _failure(server: ServerUnderTest, what: str, error: BaseException) -> str:
    _log(f"{server.name}: {what} failed: {error}\n--- last lines of its log ---")
    _log(server.log_tail(20))
    return f"{type(error).__name__}: {error}"


async def run_workloads(
    servers: list[ServerUnderTest], sizes: Sizes, selected: list[str]
) -> report.Results:
    """Set up every server, then run each workload on each server in turn."""
    results: report.Results = {server.key: {} for server in servers}
    async with client.session() as first, client.session() as second:
        runners = {
            server.key: ServerWorkloads(server, http, sizes)
            for server, http in zip(servers, (first, second), strict=False)
        }
        ready = []
        # The default workloads share one setup; scale makes its own.
        needs_setup = any(name in WORKLOADS for name in selected)
        for server in servers:
            started = time.perf_counter()
            try:
                if needs_setup:
                    await runners[server.key].setup()
            except Exception as error:
                message = _failure(server, "setup", error)
                results[server.key] = {name: {"error": f"setup: {message}"} for name in selected}
                continue
            _log(f"{server.name}: set up in {time.perf_counter() - started:.1f}s")
            ready.append(server)
        for index, name in enumerate(selected):
            # Alternate which server goes first, so slow drift on a shared machine
            # does not always favour the same one.
            order = ready if index % 2 == 0 else list(reversed(ready))
            for server in order:
                await asyncio.sleep(SETTLE_SECONDS)
                try:
                    figures = await ALL_WORKLOADS[name](runners[server.key])
                except Exception as error:
                    results[server.key][name] = {"error": _failure(server, name, error)}
                    continue
                results[server.key][name] = figures
                _log(f"{server.name}: {name}: {_summary(figures)}")
    return results


def _summary(figures: dict[str, Any]) -> str:
    return ", ".join(
        f"{key}={value:.1f}" if isinstance(value, float) else f"{key}={value}"
        for key, value in figures.items()
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` of the benchmark still stops the servers (via the ExitStack).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sizes = sizes_from(args)
    selected = args.workloads.split(",")
    wanted = ["ours", "synapse"] if args.only == "both" else [args.only]
    with ExitStack() as stack:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True)
            root = args.workdir.resolve()
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-capi-")))
        servers: list[ServerUnderTest] = []
        for key in wanted:
            if args.postgres:
                database = databases.create_postgres_database(f"bench_{key}")
                stack.callback(databases.drop, database)
            else:
                database = databases.sqlite_database(root / key / "data" / "bench.db")
            prepare = prepare_ours if key == "ours" else prepare_synapse
            server = prepare(root / key, database, log_level=args.log_level)
            stack.callback(server.stop)
            started = time.perf_counter()
            server.start()
            _log(
                f"{server.name} {server.version} on {server.base_url} ({database.label}), "
                f"up in {time.perf_counter() - started:.1f}s"
            )
            servers.append(server)
        results = asyncio.run(run_workloads(servers, sizes, selected))
    table_rows = [
        row for row in report.rows(sizes.senders, sizes.sync_rooms) if row.workload in selected
    ]
    engine = "PostgreSQL" if args.postgres else "SQLite"
    print()
    print(
        f"client API over HTTP on loopback, {engine}, {os.cpu_count()} CPUs; "
        + ", ".join(f"{server.name} {server.version}" for server in servers)
    )
    print(report.table(results, table_rows))
    if args.json is not None:
        record = {
            "engine": engine,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": {server.key: server.version for server in servers},
            "sizes": attrs.asdict(sizes),
            "results": results,
            "speedup_of_ours": report.add_ratios(results, table_rows),
        }
        report.write_json(args.json, record)
        print(f"wrote {args.json}")
    failed = any("error" in figures for per in results.values() for figures in per.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
