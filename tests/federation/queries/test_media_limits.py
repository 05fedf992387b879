"""Remote media downloads are limited in number, in all and per server, so a burst
of requests for other servers' media cannot hold unbounded memory: the rest wait
their turn, in order, and nothing is kept of a server once its downloads end."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.python.failure import Failure

from federation.client.errors import FederationRequestError
from federation.client.http import FederationFileResponse, FederationHttpClient
from federation.queries.media import (
    MAX_CONCURRENT_FETCHES,
    MAX_CONCURRENT_FETCHES_PER_ORIGIN,
    FederationMediaSource,
    FetchLimits,
)
from homeserver.errors import MatrixError
from homeserver.http.outbound import OutboundHttpClient
from homeserver.media.threads import MediaThreads


class HeldDownloads:
    """A federation client whose downloads end (with a 404) when the test says."""

    def __init__(self) -> None:
        self.running: list[tuple[str, defer.Deferred[None]]] = []
        self.most_at_once = 0

    async def get_file(
        self, destination: str, path: str, *, args: Mapping[str, Any] | None = None, **_: Any
    ) -> FederationFileResponse:
        gate: defer.Deferred[None] = defer.Deferred()
        self.running.append((destination, gate))
        self.most_at_once = max(self.most_at_once, len(self.running))
        try:
            await gate
        finally:
            self.running.remove((destination, gate))
        raise FederationRequestError(destination, 404, errcode="M_NOT_FOUND", error="no such media")

    def per_origin(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for origin, _ in self.running:
            counts[origin] = counts.get(origin, 0) + 1
        return counts

    def finish_all(self) -> None:
        for _, gate in list(self.running):
            gate.callback(None)


def source(client: HeldDownloads) -> FederationMediaSource:
    return FederationMediaSource(
        client=cast(FederationHttpClient, client),
        http=cast(OutboundHttpClient, None),
        threads=cast(MediaThreads, None),
        temp_dir=lambda: Path("/nonexistent"),
    )


@pytest_twisted.ensureDeferred
async def test_remote_downloads_run_a_few_at_once_per_server_and_in_all() -> None:
    client = HeldDownloads()
    media = source(client)
    fetches = [
        defer.ensureDeferred(media.fetch(f"s{n % 6}.test", f"m{n}", max_size=1024))
        for n in range(40)
    ]
    statuses: list[int] = []

    def refused(failure: Failure) -> None:
        failure.trap(MatrixError)
        statuses.append(cast(MatrixError, failure.value).status)

    for fetch in fetches:
        fetch.addErrback(refused)
    assert len(client.running) == MAX_CONCURRENT_FETCHES
    assert max(client.per_origin().values()) <= MAX_CONCURRENT_FETCHES_PER_ORIGIN
    while client.running:
        client.finish_all()
        assert len(client.running) <= MAX_CONCURRENT_FETCHES
        assert all(n <= MAX_CONCURRENT_FETCHES_PER_ORIGIN for n in client.per_origin().values())
    assert statuses == [404] * len(fetches)
    assert client.most_at_once == MAX_CONCURRENT_FETCHES
    assert media._limits.origins_tracked == 0


@pytest_twisted.ensureDeferred
async def test_one_busy_server_does_not_take_the_slots_of_others() -> None:
    limits = FetchLimits(total=3, per_origin=1)
    gates: dict[str, list[defer.Deferred[None]]] = {}

    async def work(origin: str) -> str:
        gate: defer.Deferred[None] = defer.Deferred()
        gates.setdefault(origin, []).append(gate)
        await gate
        return origin

    busy = [
        defer.ensureDeferred(limits.run("busy.test", lambda: work("busy.test"))) for _ in range(5)
    ]
    other = defer.ensureDeferred(limits.run("other.test", lambda: work("other.test")))
    assert len(gates["busy.test"]) == 1
    assert len(gates["other.test"]) == 1  # not queued behind the busy server
    gates["other.test"][0].callback(None)
    assert await other == "other.test"
    for n in range(5):
        gates["busy.test"][n].callback(None)
        assert await busy[n] == "busy.test"
    assert limits.origins_tracked == 0


@pytest_twisted.ensureDeferred
async def test_a_failing_download_frees_its_slot() -> None:
    limits = FetchLimits(total=1, per_origin=1)

    async def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await limits.run("a.test", fail)

    async def succeed() -> str:
        return "ok"

    assert await limits.run("a.test", succeed) == "ok"
    assert limits.origins_tracked == 0
