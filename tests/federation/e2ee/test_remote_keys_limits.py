"""One local ``/keys/query`` talks to at most ten servers at once and fetches at
most ten whole device lists per server; the other users of that server are asked
in its one batched query."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from twisted.internet import defer

from federation.e2ee.remote_keys import (
    MAX_CONCURRENT_SERVERS,
    MAX_FETCHES_PER_SERVER,
    FederatedKeys,
)
from homeserver.storage.remote_device_lists import CachedDeviceList


class _Client:
    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.pending: list[defer.Deferred[None]] = []
        self.bodies: list[tuple[str, Any]] = []

    async def post_json(self, destination: str, path: str, body: object, **_: Any) -> Any:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        self.bodies.append((destination, body))
        waiting: defer.Deferred[None] = defer.Deferred()
        self.pending.append(waiting)
        await waiting
        self.in_flight -= 1
        return {"device_keys": {}}


class _Lists:
    def __init__(self, tracked: Collection[str]) -> None:
        self.tracked = set(tracked)
        self.fetched: list[str] = []

    async def trusted_lists(self, user_ids: Collection[str]) -> dict[str, Any]:
        return {user_id: None for user_id in user_ids if user_id in self.tracked}

    async def fetch(self, user_id: str, timeout_s: float) -> CachedDeviceList:
        self.fetched.append(user_id)
        return CachedDeviceList(user_id, 1, False, [], {})


def _run(keys: FederatedKeys, users: Sequence[str], client: _Client) -> list[Any]:
    done: list[Any] = []
    defer.ensureDeferred(keys.query_remote({u: [] for u in users}, 10_000)).addBoth(done.append)
    while not done:
        assert client.pending, "nothing in flight, nothing done"
        client.pending.pop(0).callback(None)
    return done


def test_at_most_ten_servers_are_asked_at_once() -> None:
    client = _Client()
    users = [f"@u:s{i}.test" for i in range(25)]
    keys = FederatedKeys(client=client, lists=_Lists(()))  # type: ignore[arg-type]
    _run(keys, users, client)
    assert client.most == MAX_CONCURRENT_SERVERS
    assert len(client.bodies) == 25


def test_whole_list_fetches_per_server_are_capped() -> None:
    client = _Client()
    users = [f"@u{i}:big.test" for i in range(30)]
    lists = _Lists(users)
    keys = FederatedKeys(client=client, lists=lists)  # type: ignore[arg-type]
    _run(keys, users, client)
    assert len(lists.fetched) == MAX_FETCHES_PER_SERVER
    [(destination, body)] = client.bodies
    assert destination == "big.test"
    assert len(body["device_keys"]) == 30 - MAX_FETCHES_PER_SERVER
