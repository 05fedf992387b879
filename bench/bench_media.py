"""Benchmark: media upload and download throughput and thumbnail latency, ours vs Synapse.

The same files (generated once per run from a fixed seed: a 1 MB and a 20 MB random
binary, a 4000x3000 photo-like JPEG of about 3.3 MB, a 1024x768 PNG) go to each
server over HTTP with an aiohttp client (keep-alive connections):

1. upload throughput (``POST /_matrix/media/v3/upload``): each binary ``count``
   times, one request after another, then with ``--concurrency`` clients at once;
   MB/s (10^6 bytes) over the wall time of each phase;
2. download throughput (``GET /_matrix/client/v1/media/download/…``): the media
   each upload phase made, each once, the same two ways; one download of each file
   is first checked byte for byte (SHA-256);
3. thumbnail latency (``GET /_matrix/client/v1/media/thumbnail/…``), for the JPEG
   and the PNG: cold, from the response to the upload of a fresh copy to the first
   96x96 crop or 800x600 scale thumbnail (Synapse makes its preset thumbnails while
   answering the upload, ours just after it, so the upload's own time and the sum
   are shown too); warm, more requests once the thumbnail exists (median, p95);
4. the server's CPU per MB moved (its whole process tree, from ``/proc``).

Each server runs on its own (ours, then Synapse), started with the client-API
benchmark's helpers (``bench/client_api/servers.py``: generated config, fresh
SQLite file or PostgreSQL database, ``rc_*`` limits raised, ``--log-level``,
``--workdir``), plus the same media settings in both: ``max_upload_size: 100M``,
``max_image_pixels: 32M``, authenticated media, no dynamic thumbnails and the
spec's five preset sizes (both servers' defaults, written out), and media rate limits
out of the way (``rc_media_create``; ours also ``rc_media_upload``, which Synapse
does not have).  See ``bench/media/workloads.py`` for the phases.  From the
repository root:

    .venv/bin/python -m bench.bench_media [--quick] [--only ours|synapse]
        [--postgres] [--json FILE] [size flags, see --help]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import yaml

from bench.client_api import client
from bench.client_api.report import Results, add_ratios, write_json
from bench.client_api.servers import ServerUnderTest, log_problem_lines, log_problems
from bench.client_api.turns import each_server
from bench.media import report
from bench.media.files import MB, BenchFiles, make_files
from bench.media.workloads import QUICK, MediaRun, MediaSizes, phases

#: Both servers' largest upload (sizes with suffixes are powers of 1024 in both).
MAX_UPLOAD_SIZE = "100M"
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
#: Far above what the benchmark does; the shape both servers' ``rc_*`` keys take.
MEDIA_RATE_LIMIT = {"per_second": 1000, "burst_count": 1000}
#: The spec's sizes, Synapse's and our default ``thumbnail_sizes``.
THUMBNAIL_SIZES = [
    {"width": 32, "height": 32, "method": "crop"},
    {"width": 96, "height": 96, "method": "crop"},
    {"width": 320, "height": 240, "method": "scale"},
    {"width": 640, "height": 480, "method": "scale"},
    {"width": 800, "height": 600, "method": "scale"},
]
#: Pause between phases, so one phase's leftovers settle (each phase also waits for
#: the server to go quiet before it starts).
PHASE_GAP_SECONDS = 1.0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def adjust_config(server: ServerUnderTest) -> None:
    """The media settings, the same in both configs (before the start)."""
    path = server.workdir / "homeserver.yaml"
    config = yaml.safe_load(path.read_text())
    config.update(
        {
            "max_upload_size": MAX_UPLOAD_SIZE,
            "max_image_pixels": "32M",
            "enable_authenticated_media": True,
            "dynamic_thumbnails": False,
            "thumbnail_sizes": THUMBNAIL_SIZES,
            "rc_media_create": dict(MEDIA_RATE_LIMIT),
        }
    )
    if server.key == "ours":
        # Ours limits uploads per user (Synapse has no such limit).
        config["rc_media_upload"] = dict(MEDIA_RATE_LIMIT)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _failure(server: ServerUnderTest, what: str, error: BaseException) -> str:
    described = f"{type(error).__name__}: {error}"
    _log(f"{server.name}: {what} failed: {described}\n--- last lines of its log ---")
    _log(server.log_tail(20))
    return described


def _summary(figures: dict[str, Any]) -> str:
    if "mb_per_second" in figures:
        return (
            f"{figures['mb_per_second']:.1f} MB/s, median {figures['median_ms']:.1f} ms, "
            f"server CPU {figures['server_cpu_ms_per_mb']:.1f} ms/MB"
        )
    return (
        f"upload {figures['upload_median_ms']:.1f} ms, then crop "
        f"{figures['crop96_after_upload_median_ms']:.1f} ms, scale "
        f"{figures['scale800_after_upload_median_ms']:.1f} ms; warm crop "
        f"{figures['crop96_warm_median_ms']:.1f} ms, scale {figures['scale800_warm_median_ms']:.1f} ms"
    )


async def run_server(
    server: ServerUnderTest, sizes: MediaSizes, files: BenchFiles
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    async with client.session(sizes.concurrency + 2) as http:
        run = MediaRun(server, http, sizes, files)
        try:
            await run.setup()
        except Exception as error:
            return {"setup": {"error": _failure(server, "setup", error)}}
        for name, phase in phases(run):
            await asyncio.sleep(PHASE_GAP_SECONDS)
            try:
                results[name] = await phase()
            except Exception as error:
                results[name] = {"error": _failure(server, name, error)}
                continue
            _log(f"{server.name}: {name}: {_summary(results[name])}")
    return results


# -- command line ----------------------------------------------------------------------------


def _dimensions(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not WIDTHxHEIGHT: {text!r}") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"not WIDTHxHEIGHT: {text!r}")
    return size


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = MediaSizes()
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_media",
        description="Media upload/download throughput and thumbnail latency: ours vs Synapse.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke check: tiny files and counts (size flags still apply on top)",
    )
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--only", choices=("both", "ours", "synapse"), default="both")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--log-level", default="WARNING", help="servers' log level")
    parser.add_argument(
        "--workdir", type=Path, help="keep configs, databases, media and logs in this (new) folder"
    )
    sizes = parser.add_argument_group("sizes (defaults without --quick)")
    sizes.add_argument("--small-mb", type=float, help=f"small binary, MB ({defaults.small_mb:g})")
    sizes.add_argument("--large-mb", type=float, help=f"large binary, MB ({defaults.large_mb:g})")
    sizes.add_argument(
        "--small-count", type=int, help=f"small uploads per phase ({defaults.small_count})"
    )
    sizes.add_argument(
        "--large-count", type=int, help=f"large uploads per phase ({defaults.large_count})"
    )
    sizes.add_argument(
        "--concurrency", type=int, help=f"clients of the concurrent phases ({defaults.concurrency})"
    )
    sizes.add_argument(
        "--photo-size",
        type=_dimensions,
        help=f"JPEG, WIDTHxHEIGHT ({defaults.photo_width}x{defaults.photo_height})",
    )
    sizes.add_argument(
        "--image-size",
        type=_dimensions,
        help=f"PNG, WIDTHxHEIGHT ({defaults.image_width}x{defaults.image_height})",
    )
    sizes.add_argument(
        "--thumb-cold", type=int, help=f"fresh uploads per thumbnail size ({defaults.thumb_cold})"
    )
    sizes.add_argument(
        "--thumb-warm", type=int, help=f"warm requests per thumbnail size ({defaults.thumb_warm})"
    )
    sizes.add_argument("--seed", type=int, help=f"seed of the files ({defaults.seed})")
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> MediaSizes:
    sizes = QUICK if args.quick else MediaSizes()
    changes: dict[str, Any] = {
        key: getattr(args, key)
        for key in (
            "small_mb",
            "large_mb",
            "small_count",
            "large_count",
            "concurrency",
            "thumb_cold",
            "thumb_warm",
            "seed",
        )
        if getattr(args, key) is not None
    }
    if args.photo_size is not None:
        changes["photo_width"], changes["photo_height"] = args.photo_size
    if args.image_size is not None:
        changes["image_width"], changes["image_height"] = args.image_size
    sizes = attrs.evolve(sizes, **changes)
    for name in ("small_count", "large_count", "concurrency", "thumb_cold", "thumb_warm"):
        if getattr(sizes, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("small_mb", "large_mb"):
        value = getattr(sizes, name)
        if not 0 < value * MB <= MAX_UPLOAD_BYTES:
            raise SystemExit(f"--{name.replace('_', '-')}: 0 < size <= {MAX_UPLOAD_SIZE}iB")
    return sizes


def generate(sizes: MediaSizes) -> BenchFiles:
    started = time.perf_counter()
    files = make_files(
        small_bytes=round(sizes.small_mb * MB),
        large_bytes=round(sizes.large_mb * MB),
        photo_size=(sizes.photo_width, sizes.photo_height),
        image_size=(sizes.image_width, sizes.image_height),
        seed=sizes.seed,
    )
    described = ", ".join(
        f"{f.label} ({f.size / MB:.2f} MB)" for f in (*files.binaries, *files.images)
    )
    _log(f"files made in {time.perf_counter() - started:.1f}s: {described}")
    return files


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` of the benchmark still stops the servers (via the ExitStack).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sizes = sizes_from(args)
    files = generate(sizes)
    wanted = ["ours", "synapse"] if args.only == "both" else [args.only]
    results: Results = {}
    versions: dict[str, str] = {}
    log_lines: dict[str, dict[str, Any]] = {}
    began = time.perf_counter()
    with ExitStack() as stack:
        for key, server in each_server(
            stack,
            wanted,
            bench="media",
            workdir=args.workdir,
            postgres=args.postgres,
            log_level=args.log_level,
            adjust=adjust_config,
        ):
            versions[key] = server.version
            results[key] = asyncio.run(run_server(server, sizes, files))
            server.stop()
            log_lines[key] = log_problems(server)
    rows = report.rows(sizes, files)
    engine = "PostgreSQL" if args.postgres else "SQLite"
    print()
    print(
        f"media over HTTP on loopback, {engine}, {os.cpu_count()} CPUs; "
        + ", ".join(f"{'ours' if key == 'ours' else 'Synapse'} {v}" for key, v in versions.items())
    )
    print(
        f"uploads: {sizes.small_count} x {files.small.label}, {sizes.large_count} x "
        f"{files.large.label} (sequential; then {sizes.concurrency} clients); thumbnails: "
        f"{sizes.thumb_cold} fresh uploads per size, {sizes.thumb_warm} warm requests; "
        "MB = 10^6 bytes"
    )
    if args.quick:
        print("--quick: a smoke check, not a measurement")
    print(report.table(results, rows))
    for line in report.thumbnail_notes(results, files):
        print(line)
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
            "quick": args.quick,
            "sizes": attrs.asdict(sizes),
            "files": files.describe(),
            "results": results,
            "log_problems": log_lines,
            # A CPU figure below one clock tick is 0: no finite ratio.
            "speedup_of_ours": {
                key: value
                for key, value in add_ratios(results, rows).items()
                if math.isfinite(value)
            },
        }
        write_json(args.json, record)
        print(f"wrote {args.json}")
    failed = any("error" in figures for per in results.values() for figures in per.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
