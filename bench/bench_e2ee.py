"""Benchmark: end-to-end encryption key and to-device traffic, ours vs Synapse.

(a) ``/keys/query`` latency: user A queries user B, who has 20 devices with signed
    device keys, cross-signing keys and every device signed by the self-signing key;
(b) ``/keys/claim`` latency: one ``signed_curve25519`` key for each of B's 20
    devices in one request;
(c) to-device throughput: 20 senders at once, ``PUT /sendToDevice/m.test/{txn}``
    to one of B's devices per message, then to ``*``; every message is then read back
    through B's devices' ``/sync`` and counted;
(d) initial ``/sync`` of a device with 1,000 pending to-device messages: the first
    response, and draining all of them by following ``next_batch``.

Each server runs on its own (ours, then Synapse), started with the client-API
benchmark's helpers (``bench/client_api/servers.py``: generated config, fresh SQLite
file or PostgreSQL database, ``rc_*`` limits raised, ``--log-level``, ``--workdir``).
See ``bench/e2ee/workloads.py`` for the exact workloads.  From the repository root:

    .venv/bin/python -m bench.bench_e2ee [--postgres] [--only ours|synapse]
        [--json FILE] [--workdir DIR] [size flags, see --help]
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
from bench.client_api.report import Results, add_ratios, write_json
from bench.client_api.servers import ServerUnderTest, log_problem_lines, log_problems
from bench.client_api.turns import each_server
from bench.e2ee import report
from bench.e2ee.workloads import WORKLOADS, E2eeRun, E2eeSizes

#: Pause after setup and between workloads, so one workload's background work (say
#: Synapse's device-list updates) settles before the next timing.
SETTLE_SECONDS = 1.0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _failure(server: ServerUnderTest, what: str, error: BaseException) -> str:
    _log(f"{server.name}: {what} failed: {error}\n--- last lines of its log ---")
    _log(server.log_tail(20))
    return f"{type(error).__name__}: {error}"


def _summary(figures: dict[str, Any]) -> str:
    return ", ".join(
        f"{key}={value:.1f}" if isinstance(value, float) else f"{key}={value}"
        for key, value in figures.items()
    )


async def run_server(
    server: ServerUnderTest, sizes: E2eeSizes, selected: list[str]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Set up, then run each selected workload; the figures and the setup's notes."""
    results: dict[str, dict[str, Any]] = {}
    async with client.session(sizes.senders + sizes.devices + 10) as http:
        run = E2eeRun(server, http, sizes)
        started = time.perf_counter()
        try:
            await run.setup()
        except Exception as error:
            message = f"setup: {_failure(server, 'setup', error)}"
            return {name: {"error": message} for name in selected}, run.notes
        _log(f"{server.name}: set up in {time.perf_counter() - started:.1f}s")
        for note in run.notes:
            _log(f"{server.name}: NOTE {note}")
        for name in selected:
            await asyncio.sleep(SETTLE_SECONDS)
            try:
                results[name] = await WORKLOADS[name](run)
            except Exception as error:
                results[name] = {"error": _failure(server, name, error)}
                continue
            _log(f"{server.name}: {name}: {_summary(results[name])}")
    return results, run.notes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = E2eeSizes()
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_e2ee",
        description="E2EE benchmark (/keys/query, /keys/claim, to-device): ours vs Synapse.",
    )
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--only", choices=("both", "ours", "synapse"), default="both")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--log-level", default="WARNING", help="servers' log level")
    parser.add_argument(
        "--workdir", type=Path, help="keep configs, databases and logs in this (new) folder"
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of: {', '.join(WORKLOADS)} (default: all)",
    )
    sizes = parser.add_argument_group("sizes")
    flags = {
        "devices": "(a, b, c) devices of the queried user and to-device recipient",
        "repeats": "(a, b) timed requests",
        "warmup": "(a, b) untimed requests first",
        "senders": "(c) users sending at once (also fill (d)'s inboxes)",
        "messages_per_sender": "(c) messages per sender, one device each",
        "fanout_messages_per_sender": "(c) messages per sender to '*'",
        "payload_bytes": "(c, d) size of each message's stand-in ciphertext",
        "pending": "(d) to-device messages waiting for each device",
        "inbox_devices": "(d) devices, each timed once",
        "setup_concurrency": "requests in flight while setting up and verifying",
    }
    for name, text in flags.items():
        default = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        sizes.add_argument(flag, type=int, default=default, help=f"{text} ({default})")
    args = parser.parse_args(argv)
    unknown = set(args.workloads.split(",")) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    for name in flags:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` of the benchmark still stops the servers (via the ExitStack).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sizes = E2eeSizes(
        **{field.name: getattr(args, field.name) for field in attrs.fields(E2eeSizes)}
    )
    selected = [name for name in WORKLOADS if name in args.workloads.split(",")]
    wanted = ["ours", "synapse"] if args.only == "both" else [args.only]
    results: Results = {}
    notes: dict[str, list[str]] = {}
    versions: dict[str, str] = {}
    log_lines: dict[str, dict[str, Any]] = {}
    began = time.perf_counter()
    with ExitStack() as stack:
        for key, server in each_server(
            stack,
            wanted,
            bench="e2ee",
            workdir=args.workdir,
            postgres=args.postgres,
            log_level=args.log_level,
            adjust=lambda server: None,
        ):
            versions[key] = server.version
            results[key], notes[key] = asyncio.run(run_server(server, sizes, selected))
            server.stop()
            log_lines[key] = log_problems(server)
    table_rows = [row for row in report.rows(sizes) if row.workload in selected]
    engine = "PostgreSQL" if args.postgres else "SQLite"
    print()
    print(
        f"E2EE over HTTP on loopback, {engine}, {os.cpu_count()} CPUs; "
        + ", ".join(f"{'ours' if key == 'ours' else 'Synapse'} {v}" for key, v in versions.items())
    )
    print(
        f"B has {sizes.devices} devices; (a, b) {sizes.repeats} timed after {sizes.warmup}; "
        f"(c) {sizes.senders} senders x {sizes.messages_per_sender} (one device) and "
        f"x {sizes.fanout_messages_per_sender} ('*'); (d) {sizes.pending} pending, "
        f"{sizes.inbox_devices} devices"
    )
    print(report.table(results, table_rows))
    for key, lines in notes.items():
        for note in lines:
            print(f"{key}: NOTE {note} (so (a) is not like for like)")
    for key, problems in log_lines.items():
        for line in log_problem_lines(key, problems):
            print(line)
    _log(f"whole run: {time.perf_counter() - began:.0f}s")
    if args.json is not None:
        record = {
            "engine": engine,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": versions,
            "sizes": attrs.asdict(sizes),
            "results": results,
            "notes": notes,
            "log_problems": log_lines,
            "speedup_of_ours": add_ratios(results, table_rows),
        }
        write_json(args.json, record)
        print(f"wrote {args.json}")
    failed = any("error" in figures for per in results.values() for figures in per.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
