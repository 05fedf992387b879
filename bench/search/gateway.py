"""A push gateway for the benchmark: counts notifications and when each arrived.

It runs as its own process (``python -m bench.search.gateway PORT``) so that
answering thousands of pushes a second does not slow the load generator's event
loop, and so its CPU is neither the server's nor the client's.  Arrival times are
``time.monotonic()`` (``CLOCK_MONOTONIC``, shared by every process on the machine),
so the benchmark can subtract its own send times from them.

- ``POST /_matrix/push/v1/notify`` answers ``{"rejected": []}`` at once and records
  the notification's ``event_id`` and pushkey (spec: push-gateway-api);
- ``GET /stats`` answers what arrived: per event ID the count, the first and the
  last arrival, and how many (event, pushkey) pairs came more than once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import attrs

NOTIFY_PATH = "/_matrix/push/v1/notify"


@attrs.define
class _Arrivals:
    by_event: dict[str, list[float]] = attrs.field(factory=dict)  # [count, first, last]
    seen: set[tuple[str, str]] = attrs.field(factory=set)
    duplicates: int = 0
    without_event: int = 0
    total: int = 0

    def record(self, notification: dict[str, Any]) -> None:
        now = time.monotonic()
        self.total += 1
        event_id = notification.get("event_id")
        if not isinstance(event_id, str):
            # Badge-only updates (a count changed, no event) are counted apart.
            self.without_event += 1
            return
        devices = notification.get("devices") or [{}]
        for device in devices:
            key = (event_id, str(device.get("pushkey")))
            if key in self.seen:
                self.duplicates += 1
            self.seen.add(key)
        entry = self.by_event.get(event_id)
        if entry is None:
            self.by_event[event_id] = [len(devices), now, now]
        else:
            entry[0] += len(devices)
            entry[2] = now

    def stats(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "without_event": self.without_event,
            "duplicates": self.duplicates,
            "by_event": self.by_event,
        }


async def _serve(port: int) -> None:
    from aiohttp import web

    arrivals = _Arrivals()

    async def notify(request: web.Request) -> web.Response:
        body = await request.json()
        arrivals.record(body.get("notification", {}))
        return web.json_response({"rejected": []})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(arrivals.stats())

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post(NOTIFY_PATH, notify)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


class Gateway:
    """The gateway process: start, read its figures, stop."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{NOTIFY_PATH}"

    def start(self, timeout: float = 30.0) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.search.gateway", str(self.port)]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.stats()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError("the push gateway did not start")

    def stats(self) -> dict[str, Any]:
        """What arrived so far (blocking: call it through ``asyncio.to_thread``)."""
        url = f"http://127.0.0.1:{self.port}/stats"
        with urllib.request.urlopen(url, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
