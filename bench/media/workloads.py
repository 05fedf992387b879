"""The timed phases, run the same way on each server.

- ``upload_<file>_seq``: one client uploads the file ``count`` times, one request
  after another; ``upload_<file>_conc``: ``concurrency`` clients (each its own user
  and connection) upload it at once, ``ceil(count / concurrency)`` times each.
  MB/s is the bytes sent over the wall time of the whole phase (MB: 10^6 bytes).
- ``download_<file>_seq`` / ``_conc``: the media those phases uploaded, each
  downloaded once (``/_matrix/client/v1/media/download``), the same way.  Before,
  one untimed download of each file is checked byte for byte (SHA-256), so an error
  page can never be timed; timed downloads are checked for length.
- ``thumbs_<image>``: cold, ``thumb_cold`` times per size: upload a fresh copy of
  the image, then at once ask for one thumbnail (96x96 crop or 800x600 scale,
  alternately); timed from the upload's response to the thumbnail's (and from the
  upload's request, the whole wait a client sees).  The server is left to go quiet
  before each trial, so work left from the previous one (our background presets)
  does not land in it.  Warm: ``thumb_warm`` more requests for each size of media
  whose thumbnails exist; median and p95.

Every phase also records the server's CPU seconds (its whole process tree, from
``/proc``) and the client's, per MB for the transfers.
"""

from __future__ import annotations

import asyncio
import io
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import aiohttp
import attrs
from PIL import Image

from bench.client_api.client import Client
from bench.client_api.servers import ServerUnderTest
from bench.client_api.workloads import latency_figures, percentile
from bench.cpu_meter import own_cpu_seconds, tree_cpu_seconds
from bench.media.files import MB, BenchFile, BenchFiles
from bench.media.http import MediaClient, MediaId

T = TypeVar("T")

#: The thumbnails asked for: (name, width, height, method).  Both are preset sizes
#: of the spec's (and both servers') default ``thumbnail_sizes``.
THUMBNAILS = (("crop96", 96, 96, "crop"), ("scale800", 800, 600, "scale"))


@attrs.frozen
class MediaSizes:
    """The knobs of every phase (the command's flags)."""

    small_mb: float = 1.0
    large_mb: float = 20.0
    small_count: int = 20
    large_count: int = 5
    concurrency: int = 4
    photo_width: int = 4000
    photo_height: int = 3000
    image_width: int = 1024
    image_height: int = 768
    thumb_cold: int = 10
    thumb_warm: int = 50
    seed: int = 1


#: ``--quick``: a smoke check that every request works, not a measurement.
QUICK = MediaSizes(
    small_mb=0.25,
    large_mb=2.0,
    small_count=3,
    large_count=2,
    concurrency=2,
    photo_width=1600,
    photo_height=1200,
    thumb_cold=2,
    thumb_warm=5,
)


async def settle(
    pid: int, *, busy: float = 0.1, interval: float = 0.2, limit: float = 30.0
) -> float:
    """Wait until the server's process tree used under ``busy`` of a core over two
    intervals in a row (or ``limit`` seconds passed); the seconds waited."""
    started = time.perf_counter()
    quiet = 0
    before = await asyncio.to_thread(tree_cpu_seconds, pid)
    while quiet < 2 and time.perf_counter() - started < limit:
        await asyncio.sleep(interval)
        now = await asyncio.to_thread(tree_cpu_seconds, pid)
        quiet = quiet + 1 if now - before < busy * interval else 0
        before = now
    return time.perf_counter() - started


@attrs.frozen
class Cost:
    """CPU seconds (server process tree, this client) and wall seconds of a phase."""

    server: float
    client: float
    wall: float


async def measured(work: Callable[[], Awaitable[T]], pid: int) -> tuple[T, Cost]:
    server_before = await asyncio.to_thread(tree_cpu_seconds, pid)
    client_before = own_cpu_seconds()
    started = time.perf_counter()
    result = await work()
    wall = time.perf_counter() - started
    client = own_cpu_seconds() - client_before
    server = await asyncio.to_thread(tree_cpu_seconds, pid) - server_before
    return result, Cost(server, client, wall)


def _transfer_figures(latencies: list[float], size: int, cost: Cost) -> dict[str, Any]:
    total_mb = size * len(latencies) / MB
    figures: dict[str, Any] = {
        "mb_per_second": total_mb / cost.wall,
        "files": len(latencies),
        "megabytes": total_mb,
        "seconds": cost.wall,
        "server_cpu_seconds": cost.server,
        "server_cpu_ms_per_mb": cost.server * 1000 / total_mb,
        "client_cpu_ms_per_mb": cost.client * 1000 / total_mb,
    }
    figures.update(latency_figures(latencies))
    return figures


def _check_thumbnail(name: str, body: bytes | None) -> dict[str, Any]:
    """Untimed: the thumbnail is an image; its format and dimensions, for the record."""
    assert body is not None
    with Image.open(io.BytesIO(body)) as picture:
        return {
            f"{name}_format": picture.format,
            f"{name}_dimensions": list(picture.size),
            f"{name}_bytes": len(body),
        }


class MediaRun:
    """The users of one server and the timed phases on it."""

    def __init__(
        self,
        server: ServerUnderTest,
        http: aiohttp.ClientSession,
        sizes: MediaSizes,
        files: BenchFiles,
    ) -> None:
        self.server = server
        self.http = http
        self.sizes = sizes
        self.files = files
        self.clients: list[MediaClient] = []
        #: The media each upload phase made, for the matching download phase.
        self.uploaded: dict[str, list[MediaId]] = {}

    @property
    def pid(self) -> int:
        assert self.server.pid is not None
        return self.server.pid

    async def setup(self) -> None:
        """One user per concurrent client; each opens its connection with an untimed
        upload and download of the small file."""
        anonymous = Client(self.http, self.server.base_url)
        for number in range(max(1, self.sizes.concurrency)):
            account = await anonymous.register_with_secret(
                f"media_{number}", self.server.shared_secret
            )
            self.clients.append(MediaClient(self.http, self.server.base_url, account))
        small = self.files.small

        async def warm_up(client: MediaClient) -> None:
            media = await client.upload(small.data, small.content_type, small.filename)
            await client.download(media)

        await asyncio.gather(*(warm_up(client) for client in self.clients))

    async def verify(self, file: BenchFile, media: MediaId) -> None:
        """Untimed: the server gives back exactly the bytes uploaded."""
        fetched = await self.clients[0].download(media, digest=True)
        if fetched.size != file.size or fetched.sha256 != file.sha256:
            raise RuntimeError(
                f"download of {file.label} returned {fetched.size} bytes "
                f"(sha256 {fetched.sha256}, {fetched.content_type!r}), expected "
                f"{file.size} bytes (sha256 {file.sha256})"
            )
        if not fetched.content_type.startswith(file.content_type):
            raise RuntimeError(
                f"download of {file.label} has Content-Type {fetched.content_type!r}, "
                f"uploaded as {file.content_type!r}"
            )

    def _plan(self, concurrent: bool, count: int) -> list[int]:
        """How many requests each client makes."""
        if not concurrent:
            return [count]
        per_client = math.ceil(count / len(self.clients))
        return [per_client] * len(self.clients)

    async def upload(self, file: BenchFile, count: int, *, concurrent: bool) -> dict[str, Any]:
        latencies: list[float] = []
        made: list[MediaId] = []

        async def uploads(client: MediaClient, times: int) -> None:
            for _ in range(times):
                started = time.perf_counter()
                media = await client.upload(file.data, file.content_type, file.filename)
                latencies.append(time.perf_counter() - started)
                made.append(media)

        plan = self._plan(concurrent, count)
        await settle(self.pid)

        async def everyone() -> None:
            # Sequential: the first client alone.
            await asyncio.gather(*(uploads(c, n) for c, n in zip(self.clients, plan, strict=False)))

        _, cost = await measured(everyone, self.pid)
        self.uploaded[f"{file.key}_{'conc' if concurrent else 'seq'}"] = made
        await self.verify(file, made[0])
        return _transfer_figures(latencies, file.size, cost)

    async def download(self, file: BenchFile, *, concurrent: bool) -> dict[str, Any]:
        media = self.uploaded.get(f"{file.key}_{'conc' if concurrent else 'seq'}")
        if not media:
            raise RuntimeError("nothing to download: its upload phase failed")
        latencies: list[float] = []
        shares = (
            [media]
            if not concurrent
            else [media[i :: len(self.clients)] for i in range(len(self.clients))]
        )

        async def downloads(client: MediaClient, items: list[MediaId]) -> None:
            for item in items:
                started = time.perf_counter()
                fetched = await client.download(item)
                latencies.append(time.perf_counter() - started)
                if fetched.size != file.size:
                    raise RuntimeError(f"{item}: {fetched.size} bytes, expected {file.size}")

        await settle(self.pid)

        async def everyone() -> None:
            await asyncio.gather(
                *(downloads(c, s) for c, s in zip(self.clients, shares, strict=False))
            )

        _, cost = await measured(everyone, self.pid)
        return _transfer_figures(latencies, file.size, cost)

    async def thumbnails(self, image: BenchFile) -> dict[str, Any]:
        client = self.clients[0]
        uploads: list[float] = []
        after: dict[str, list[float]] = {name: [] for name, *_ in THUMBNAILS}
        total: dict[str, list[float]] = {name: [] for name, *_ in THUMBNAILS}
        last: dict[str, MediaId] = {}
        figures: dict[str, Any] = {}
        settle_seconds = 0.0
        for trial in range(self.sizes.thumb_cold * len(THUMBNAILS)):
            name, width, height, method = THUMBNAILS[trial % len(THUMBNAILS)]
            settle_seconds += await settle(self.pid)
            data = image.distinct_copy(trial)
            started = time.perf_counter()
            media = await client.upload(data, image.content_type, image.filename)
            uploaded = time.perf_counter()
            fetched = await client.thumbnail(media, width, height, method, keep=True)
            done = time.perf_counter()
            uploads.append(uploaded - started)
            after[name].append(done - uploaded)
            total[name].append(done - started)
            if name not in last:
                figures.update(_check_thumbnail(name, fetched.body))
                figures[f"{name}_content_type"] = fetched.content_type
            last[name] = media
        figures["upload_median_ms"] = statistics.median(uploads) * 1000
        figures["upload_p95_ms"] = percentile(uploads, 0.95) * 1000
        for name, *_ in THUMBNAILS:
            figures[f"{name}_after_upload_median_ms"] = statistics.median(after[name]) * 1000
            figures[f"{name}_total_median_ms"] = statistics.median(total[name]) * 1000
        figures["cold_trials_per_size"] = self.sizes.thumb_cold
        figures["settle_seconds"] = settle_seconds
        await settle(self.pid)
        for name, width, height, method in THUMBNAILS:
            await client.thumbnail(last[name], width, height, method)  # untimed
            latencies = []
            for _ in range(self.sizes.thumb_warm):
                started = time.perf_counter()
                await client.thumbnail(last[name], width, height, method)
                latencies.append(time.perf_counter() - started)
            warm = latency_figures(latencies)
            figures[f"{name}_warm_median_ms"] = warm["median_ms"]
            figures[f"{name}_warm_p95_ms"] = warm["p95_ms"]
            figures[f"{name}_warm_mean_ms"] = warm["mean_ms"]
        return figures


def phases(run: MediaRun) -> list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]]:
    """Every phase by name, in the order they run."""
    sizes, files = run.sizes, run.files
    out: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = []
    for file, count in ((files.small, sizes.small_count), (files.large, sizes.large_count)):
        for concurrent in (False, True):
            mode = "conc" if concurrent else "seq"
            out.append(
                (
                    f"upload_{file.key}_{mode}",
                    partial(run.upload, file, count, concurrent=concurrent),
                )
            )
        for concurrent in (False, True):
            mode = "conc" if concurrent else "seq"
            out.append(
                (f"download_{file.key}_{mode}", partial(run.download, file, concurrent=concurrent))
            )
    for image in files.images:
        out.append((f"thumbs_{image.key}", partial(run.thumbnails, image)))
    return out
