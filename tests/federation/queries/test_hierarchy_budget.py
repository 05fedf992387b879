"""A walk of a client's ``/hierarchy`` through other servers' spaces has one budget
of time and server attempts: a space whose children name only unreachable servers
is answered within it, not after every child's every server timed out.

spec: server-server-api.md#spaces (the walk is ours: client-server
modules/spaces.md leaves how far to go to the server)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import pytest_twisted
from twisted.internet import task

from federation.client.errors import FederationUnreachable, NotRetryingDestination
from federation.client.http import FederationHttpClient
from federation.queries.hierarchy import (
    MAX_ATTEMPTS_PER_WALK,
    QUERY_TIMEOUT_S,
    WALK_BUDGET_S,
    RemoteHierarchyQuery,
)
from homeserver.clock import Clock


class SilentServers:
    """Every request waits for its whole time-out and fails, as an unreachable
    server does; the fake clock moves by that time-out.  Servers named
    ``backoff*`` are refused at once (we are backing off from them)."""

    def __init__(self, clock: task.Clock) -> None:
        self.clock = clock
        self.requests: list[tuple[str, float]] = []

    async def get_json(
        self,
        destination: str,
        path: str,
        *,
        args: Mapping[str, Any] | None = None,
        timeout: float = 60.0,  # noqa: ASYNC109
        max_size: int = 0,
    ) -> Any:
        if destination.startswith("backoff"):
            raise NotRetryingDestination(destination, 1)
        self.requests.append((destination, timeout))
        self.clock.advance(timeout)
        raise FederationUnreachable(destination, "timed out")


def query(clock: task.Clock) -> tuple[RemoteHierarchyQuery, SilentServers]:
    servers = SilentServers(clock)
    client = cast(FederationHttpClient, servers)
    return RemoteHierarchyQuery(server_name="us.test", client=client, clock=Clock(clock)), servers


@pytest_twisted.ensureDeferred
async def test_a_walk_through_unreachable_servers_ends_within_its_budget() -> None:
    clock = task.Clock()
    remote, servers = query(clock)
    clock.advance(10)  # the walk's budget counts from its start
    walk = remote.walk()
    start = clock.seconds()
    via = ["a.test", "b.test", "c.test"]
    for n in range(50):
        assert await walk.get_remote_space(f"!r{n}:a.test", via, suggested_only=False) is None
    assert clock.seconds() - start <= WALK_BUDGET_S
    assert len(servers.requests) <= MAX_ATTEMPTS_PER_WALK
    assert all(timeout <= QUERY_TIMEOUT_S for _, timeout in servers.requests)
    # Without the budget: 50 rooms x 3 servers x a full time-out each.
    assert len(servers.requests) < 50 * 3
    # A new walk has a budget of its own.
    before = len(servers.requests)
    await remote.walk().get_remote_space("!x:a.test", ["a.test"], suggested_only=False)
    assert len(servers.requests) == before + 1


@pytest_twisted.ensureDeferred
async def test_the_last_attempt_gets_only_the_time_left() -> None:
    clock = task.Clock()
    remote, servers = query(clock)
    walk = remote.walk()
    await walk.get_remote_space("!r:a.test", ["a.test"], suggested_only=False)
    clock.advance(WALK_BUDGET_S - QUERY_TIMEOUT_S - 5)
    await walk.get_remote_space("!s:a.test", ["b.test"], suggested_only=False)
    assert servers.requests == [("a.test", QUERY_TIMEOUT_S), ("b.test", 5.0)]


@pytest_twisted.ensureDeferred
async def test_attempts_are_capped_even_when_servers_fail_fast() -> None:
    clock = task.Clock()
    remote, servers = query(clock)

    async def fail_fast(destination: str, path: str, **_: Any) -> Any:
        servers.requests.append((destination, 0.0))
        raise FederationUnreachable(destination, "connection refused")

    servers.get_json = fail_fast  # type: ignore[method-assign]
    walk = remote.walk()
    for n in range(50):
        await walk.get_remote_space(f"!r{n}:a.test", ["a.test", "b.test"], suggested_only=False)
    assert len(servers.requests) == MAX_ATTEMPTS_PER_WALK


@pytest_twisted.ensureDeferred
async def test_servers_we_back_off_from_cost_no_attempt() -> None:
    clock = task.Clock()
    remote, servers = query(clock)

    async def fail_fast(destination: str, path: str, **_: Any) -> Any:
        if destination.startswith("backoff"):
            raise NotRetryingDestination(destination, 1)
        servers.requests.append((destination, 0.0))
        raise FederationUnreachable(destination, "connection refused")

    servers.get_json = fail_fast  # type: ignore[method-assign]
    walk = remote.walk()
    via: Sequence[str] = ["backoff.test", "a.test"]
    for n in range(50):
        await walk.get_remote_space(f"!r{n}:a.test", via, suggested_only=False)
    # Had the refusals counted, a.test would have been tried half as often.
    assert len(servers.requests) == MAX_ATTEMPTS_PER_WALK
