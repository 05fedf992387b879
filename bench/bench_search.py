"""Benchmark: message search, the user directory and push, ours vs Synapse.

(a) ``/search`` latency over ``--messages`` messages (default 100,000) in 10 rooms:
    a frequent word, a rare word, that word misspelled, a prefix; rank and recent;
    with each answer's count next to the number of messages holding the word;
(b) database and search-index bytes per message;
(c) ``/user_directory/search`` over ``--users`` accounts (default 10,000): full
    name, prefix, misspelled name;
(d) push: a ``--push-members``-member room (default 1,000), everyone with an HTTP
    pusher to the benchmark's own gateway; server CPU per message, send-to-push
    time, pushes delivered, database growth.

Each server runs on its own (ours, then Synapse), started with the client-API
benchmark's helpers (``bench/client_api/servers.py``) plus the settings in
``bench/search/workloads.py``.  From the repository root:

    .venv/bin/python -m bench.bench_search [--postgres] [--only ours|synapse]
        [--json FILE] [--workdir DIR] [--workloads search,directory,push] [sizes]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs

from bench.client_api import client
from bench.client_api.report import Results, write_json
from bench.client_api.servers import ServerUnderTest, log_problem_lines, log_problems
from bench.client_api.turns import each_server
from bench.search import report
from bench.search.sizes import SearchSizes, log
from bench.search.workloads import SHARED_SETTINGS, WORKLOADS, adjust


async def run_server(
    server: ServerUnderTest, sizes: SearchSizes, selected: list[str]
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    async with client.session(sizes.setup_concurrency + sizes.rooms + 20) as http:
        anonymous = client.Client(http, server.base_url)
        for name in selected:
            started = time.perf_counter()
            figures: dict[str, Any] = {}
            results[name] = figures
            try:
                await WORKLOADS[name](server, anonymous, sizes, figures)
            except Exception as error:
                log(server.name, f"{name} failed: {error!r}\n--- last lines of its log ---")
                log(server.name, server.log_tail(20))
                figures["error"] = f"{type(error).__name__}: {error}"
            results[name]["wall_seconds"] = time.perf_counter() - started
            log(server.name, f"{name}: {results[name]['wall_seconds']:.0f} s")
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = SearchSizes()
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_search",
        description="Search, user directory and push benchmark: ours vs Synapse.",
    )
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--only", choices=("both", "ours", "synapse"), default="both")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--log-level", default="WARNING", help="servers' log level")
    parser.add_argument("--workdir", type=Path, help="keep configs, databases and logs here")
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of: {', '.join(WORKLOADS)} (default: all)",
    )
    sizes = parser.add_argument_group("sizes")
    flags = {
        "messages": "(a) messages to populate",
        "rooms": "(a) rooms they go into",
        "senders": "(a) users sending them",
        "queries": "(a, c) timed queries per kind (and order)",
        "warmup": "(a, c) untimed queries first",
        "users": "(c) accounts in the directory",
        "directory_limit": "(c) the search's limit",
        "push_members": "(d) members of the room, each with a pusher",
        "push_messages": "(d) messages sent",
        "push_rate": "(d) messages per second",
        "push_timeout": "(d) seconds to wait for the pushes",
        "setup_concurrency": "requests in flight while making accounts and pushers",
        "index_timeout": "(a, c) seconds to wait for the last message or account",
    }
    for name, text in flags.items():
        default = getattr(defaults, name)
        sizes.add_argument(
            "--" + name.replace("_", "-"),
            type=type(default),
            default=default,
            help=f"{text} ({default})",
        )
    sizes.add_argument(
        "--event-id-only", action="store_true", help="(d) pushers with format event_id_only"
    )
    args = parser.parse_args(argv)
    unknown = set(args.workloads.split(",")) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    for name in flags:
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.push_members < 2:
        parser.error("--push-members must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sizes = SearchSizes(
        **{field.name: getattr(args, field.name) for field in attrs.fields(SearchSizes)}
    )
    selected = [name for name in WORKLOADS if name in args.workloads.split(",")]
    wanted = ["ours", "synapse"] if args.only == "both" else [args.only]
    results: Results = {}
    versions: dict[str, str] = {}
    walls: dict[str, float] = {}
    log_lines: dict[str, dict[str, Any]] = {}
    began = time.perf_counter()
    with ExitStack() as stack:
        for key, server in each_server(
            stack,
            wanted,
            bench="search",
            workdir=args.workdir,
            postgres=args.postgres,
            log_level=args.log_level,
            adjust=adjust,
        ):
            started = time.perf_counter()
            versions[key] = server.version
            results[key] = asyncio.run(run_server(server, sizes, selected))
            walls[key] = time.perf_counter() - started
            server.stop()
            log_lines[key] = log_problems(server)
    table_rows = [row for row in report.rows(sizes) if row.workload in selected]
    engine = "PostgreSQL" if args.postgres else "SQLite"
    print()
    print(
        f"Search / directory / push over HTTP on loopback, {engine}, {os.cpu_count()} CPUs; "
        + ", ".join(f"{'ours' if k == 'ours' else 'Synapse'} {v}" for k, v in versions.items())
    )
    print(
        f"(a) {sizes.messages:,} messages, {sizes.rooms} rooms, {sizes.senders} senders; "
        f"{sizes.queries} timed queries per kind after {sizes.warmup}; (c) {sizes.users:,} "
        f"accounts, limit {sizes.directory_limit}; (d) {sizes.push_members:,} members, "
        f"{sizes.push_messages} messages at {sizes.push_rate:g}/s"
        + (", event_id_only" if sizes.event_id_only else "")
    )
    print(report.table(results, table_rows))
    for line in report.push_tables(results):
        print(line)
    for key, seconds in walls.items():
        print(f"{key}: wall time {seconds:.0f} s")
    for key, problems in log_lines.items():
        for line in log_problem_lines(key, problems):
            print(line)
    log("whole run", f"{time.perf_counter() - began:.0f} s")
    if args.json is not None:
        record = {
            "engine": engine,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": versions,
            "sizes": attrs.asdict(sizes),
            "settings": SHARED_SETTINGS,
            "results": results,
            "wall_seconds": walls,
            "log_problems": log_lines,
            "speedup_of_ours": report.ratios(results, table_rows),
        }
        write_json(args.json, record)
        print(f"wrote {args.json}")
    failed = any("error" in figures for per in results.values() for figures in per.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
