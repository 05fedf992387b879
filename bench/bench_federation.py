"""Federation benchmark: ours against Synapse 1.163.2 in one run, as ratios.

Workloads (``--workloads``, default all):

- ``join``: a host Synapse holds a room of ``--members`` joined accounts and
  ``--events`` messages; ours and a second Synapse each join it: ``/join`` time, time
  until the full member list is there, lateness of live messages after the join.
- ``inbound``: a remote server played by the benchmark pushes ``--inbound-pdus``
  messages in transactions of 50 into a room on the server under test: PDUs/s.
- ``fanout``: a room on the server under test with members on ``--destinations``
  light remote servers; ``--fanout-messages`` messages: until every destination has
  every message.

Every server runs on loopback over TLS with a test CA (the federation test harness,
tests/support/federation.py), SQLite, rate limits raised, log level WARNING.
Run from the repository root: ``.venv/bin/python -m bench.bench_federation``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.client_api.client import session as client_session
from bench.federation import cluster
from bench.federation.fanout import FanoutSizes, run_fanout
from bench.federation.inbound import InboundSizes, run_inbound
from bench.federation.join import JoinSizes, build_host_room, measure_join
from bench.federation.report import print_table
from tests.support.federation import FederatedServer, TestCA

WORKLOADS = ("join", "inbound", "fanout")
SERVERS = ("ours", "synapse")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--only", choices=SERVERS, help="measure one server only")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--live-interval-ms", type=float, default=100.0)
    parser.add_argument("--inbound-pdus", type=int, default=5000)
    parser.add_argument("--destinations", type=int, default=50)
    parser.add_argument("--fanout-messages", type=int, default=200)
    parser.add_argument("--room-version", default="12")
    parser.add_argument("--setup-concurrency", type=int, default=8)
    parser.add_argument(
        "--engine",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="our server's database (Synapse: SQLite)",
    )
    parser.add_argument("--workdir", type=Path, help="keep configs, logs and databases here")
    parser.add_argument("--json", type=Path, help="write every figure here")
    return parser.parse_args(argv)


def _servers(args: argparse.Namespace) -> list[str]:
    return [args.only] if args.only else list(SERVERS)


def _start(
    stack: ExitStack, kind: str, folder: Path, ca: TestCA, name: str, engine: str
) -> FederatedServer:
    if kind == "ours":
        return stack.enter_context(cluster.ours(folder, ca, name=name, engine=engine))
    return stack.enter_context(cluster.synapse(folder, ca, name=name))


def run_join(args: argparse.Namespace, folder: Path, ca: TestCA) -> dict[str, Any]:
    sizes = JoinSizes(
        members=args.members,
        events=args.events,
        live_seconds=args.live_seconds,
        live_interval=args.live_interval_ms / 1000,
        room_version=args.room_version,
        concurrency=args.setup_concurrency,
    )
    figures: dict[str, Any] = {}
    with ExitStack() as stack:
        host = _start(stack, "synapse", folder, ca, "join-host", args.engine)
        joiners = {
            kind: _start(stack, kind, folder, ca, f"join-{kind}", args.engine)
            for kind in _servers(args)
        }

        async def go() -> None:
            async with client_session() as http:
                room = await build_host_room(http, host, sizes)
                figures["host_setup"] = room.setup
                print(f"host room ready: {room.setup}", file=sys.stderr)
                for kind, server in joiners.items():
                    try:
                        figures[kind] = await measure_join(
                            http,
                            host,
                            room,
                            server,
                            sizes,
                            label=kind,
                            partial_state_db=(
                                server.process.tmp_path / "homeserver.db"
                                if kind == "synapse"
                                else None
                            ),
                        )
                    except Exception as failed:
                        figures[kind] = {"error": f"{type(failed).__name__}: {failed}"}
                        traceback.print_exc()
                    print(f"join {kind}: {figures[kind]}", file=sys.stderr)

        asyncio.run(go())
    return figures


def run_per_server(
    args: argparse.Namespace, folder: Path, ca: TestCA, workload: str
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for kind in _servers(args):
        with ExitStack() as stack:
            server = _start(stack, kind, folder, ca, f"{workload}-{kind}", args.engine)
            try:
                if workload == "inbound":
                    sizes_in = InboundSizes(pdus=args.inbound_pdus, room_version=args.room_version)
                    figures[kind] = asyncio.run(run_inbound(server, ca, sizes_in))
                else:
                    sizes_out = FanoutSizes(
                        destinations=args.destinations,
                        messages=args.fanout_messages,
                        room_version=args.room_version,
                    )
                    figures[kind] = asyncio.run(run_fanout(server, ca, sizes_out))
            except Exception as failed:
                figures[kind] = {"error": f"{type(failed).__name__}: {failed}"}
                traceback.print_exc()
        print(f"{workload} {kind}: {figures[kind]}", file=sys.stderr)
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads: {sorted(unknown)}")
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="bench-federation-"))
    folder.mkdir(parents=True, exist_ok=True)
    ca = TestCA.create(folder / "ca")
    results: dict[str, Any] = {"load_average_before": os.getloadavg()}
    began = time.monotonic()
    for workload in workloads:
        started = time.monotonic()
        if workload == "join":
            results[workload] = run_join(args, folder, ca)
        else:
            results[workload] = run_per_server(args, folder, ca, workload)
        results[workload]["wall_seconds"] = time.monotonic() - started
    results["wall_seconds"] = time.monotonic() - began
    results["load_average_after"] = os.getloadavg()
    results["sizes"] = {
        key: value for key, value in vars(args).items() if key not in ("workdir", "json")
    }
    print_table(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    failed = any(
        isinstance(figures, dict) and "error" in figures
        for workload in workloads
        for figures in results[workload].values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
