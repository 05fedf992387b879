"""Sending to-device messages and reading them back through ``/sync``.

Every message the bench sends carries its phase and a number, so what a device
receives can be counted and checked for duplicates: a throughput figure only counts
if the recipient really gets every message.

spec: client-server-api/modules/send_to_device.md; data/api/client-server/to_device.yaml,
sync.yaml (``to_device``)
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from typing import Any
from urllib.parse import quote

import attrs

from bench.client_api.client import CLIENT_PREFIX, Client

EVENT_TYPE = "m.test"
#: An initial /sync that leaves rooms, presence and account data out, so what is
#: timed is the to-device part (the recipients are in no rooms anyway).
SYNC_FILTER = json.dumps(
    {
        "room": {"rooms": [], "account_data": {"types": []}},
        "presence": {"types": []},
        "account_data": {"types": []},
    },
    separators=(",", ":"),
)
#: A drain that has not emptied the inbox after this many responses is broken.
MAX_PAGES = 10_000


def padding(size: int) -> str:
    """Stand-in ciphertext of ``size`` characters (real to-device messages are
    Olm-encrypted blobs of a few hundred bytes)."""
    return secrets.token_urlsafe(size)[:size]


def content(phase: str, sender: int, number: int, ciphertext: str) -> dict[str, Any]:
    return {"phase": phase, "sender": sender, "n": number, "ciphertext": ciphertext}


async def send(client: Client, txn_id: str, messages: dict[str, dict[str, Any]]) -> None:
    """``PUT /sendToDevice/m.test/{txnId}`` with ``messages`` (user → device → content)."""
    path = f"{CLIENT_PREFIX}/sendToDevice/{EVENT_TYPE}/{quote(txn_id, safe='')}"
    await client.call("PUT", path, {"messages": messages})


async def sync(client: Client, since: str | None) -> dict[str, Any]:
    """One ``GET /sync`` with the bench filter and no waiting."""
    params = {"filter": SYNC_FILTER, "timeout": "0"}
    if since is not None:
        params["since"] = since
    return (await client.call("GET", f"{CLIENT_PREFIX}/sync", params=params))[0]


def to_device_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body.get("to_device", {}).get("events", []))


@attrs.define
class Drained:
    """What one device read until its inbox was empty, and how long it took: to the
    first response, and to the last (the one that brought nothing)."""

    events: list[dict[str, Any]]
    since: str
    pages: int
    first_page: int
    first_seconds: float
    seconds: float

    def by_phase(self) -> Counter[str]:
        return Counter(
            str(event.get("content", {}).get("phase"))
            for event in self.events
            if event.get("type") == EVENT_TYPE
        )

    def duplicates(self) -> int:
        seen = Counter(
            (event.get("sender"), json.dumps(event.get("content"), sort_keys=True))
            for event in self.events
        )
        return sum(count - 1 for count in seen.values())


async def drain(client: Client, since: str | None) -> Drained:
    """Sync from ``since`` (``None``: an initial sync), following ``next_batch``, until a
    response brings no to-device message; each later request acknowledges the
    previous page, as a client's next sync does."""
    events: list[dict[str, Any]] = []
    first_page, first_seconds = 0, 0.0
    start = time.perf_counter()
    for pages in range(1, MAX_PAGES + 1):
        body = await sync(client, since)
        page = to_device_events(body)
        if pages == 1:
            first_seconds, first_page = time.perf_counter() - start, len(page)
        since = str(body["next_batch"])
        if not page:
            seconds = time.perf_counter() - start
            return Drained(events, since, pages, first_page, first_seconds, seconds)
        events.extend(page)
    raise RuntimeError(f"{client.user_id}: inbox not empty after {MAX_PAGES} syncs")
