"""The notary: other servers' key responses served as received with our signature
added, fetched from the origin when missing or not fresh enough, the last one kept
served when the origin is down; and the query bodies it accepts.

spec: server-server-api.md#querying-keys-through-another-server
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import verify_signed_json
from twisted.internet import task

from federation.keys.fetchers import DirectKeyFetcher
from federation.keys.keyring import Keyring
from federation.keys.local import LocalServerKeys
from federation.keys.notary import MAX_FETCHES_PER_QUERY, KeyNotary, KeyQuery
from federation.servlets.keys import MAX_SERVERS_PER_QUERY, parse_key_queries
from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.ratelimit import RateLimitConfig, RateLimiter
from homeserver.storage.database import Database
from homeserver.storage.server_keys import ServerKeyStore
from tests.federation.keys.key_peers import DAY_MS, NOW_MS, KeyPeers, RemoteServer

US = "notary.example"
KEYS_PATH = "/_matrix/key/v2/server"


#: The client address the tests' queries come from.
CLIENT = "192.0.2.7"
#: What a notary under test allows unless a test says otherwise: never reached.
UNLIMITED = RateLimitConfig(per_second=1000, burst_count=1000)


class Notary:
    def __init__(
        self,
        db: Database,
        whitelist: frozenset[str] | None = None,
        limit: RateLimitConfig = UNLIMITED,
    ) -> None:
        self.reactor = task.Clock()
        self.reactor.advance(NOW_MS / 1000)
        self.peers = KeyPeers()
        clock = Clock(self.reactor)
        self.local = LocalServerKeys(
            server_name=US,
            signing_key=generate_signing_key("n1"),
            old_signing_keys=(),
            key_refresh_interval_ms=DAY_MS,
            clock=clock,
        )
        store = ServerKeyStore(db)
        keyring = Keyring(
            local_keys=self.local,
            store=store,
            notaries=[],
            direct=DirectKeyFetcher(self.peers),
            clock=clock,
        )
        self.notary = KeyNotary(
            local_keys=self.local,
            store=store,
            keyring=keyring,
            clock=clock,
            domain_whitelist=whitelist,
            limiter=RateLimiter(clock, limit),
        )

    async def query(self, *queries: KeyQuery, client: str = CLIENT) -> list[dict[str, Any]]:
        return await self.notary.query(queries, requester=client)

    def assert_countersigned(self, response: dict[str, Any], origin: RemoteServer) -> None:
        verify_signed_json(response, origin.name, get_verify_key(origin.signing_key))
        verify_signed_json(response, US, get_verify_key(self.local.signing_key))


@pytest.fixture
def notary(db: Database) -> Notary:
    return Notary(db)


def every_key(server: str, minimum: int | None = None) -> KeyQuery:
    return KeyQuery(server, {}, minimum)


@pytest_twisted.ensureDeferred
async def test_keys_are_fetched_once_and_served_countersigned(notary: Notary) -> None:
    origin = RemoteServer("origin.example")
    notary.peers.serve_keys(origin)
    [first] = await notary.query(every_key(origin.name))
    notary.assert_countersigned(first, origin)
    [again] = await notary.query(KeyQuery(origin.name, {origin.key_id: NOW_MS + 1000}))
    assert again == first
    assert notary.peers.count(origin.name, KEYS_PATH) == 1
    # Exactly what the origin sent, plus our signature.
    del first["signatures"][US]
    assert first == origin.key_response()


@pytest_twisted.ensureDeferred
async def test_our_own_keys_are_answered_without_a_request(notary: Notary) -> None:
    [ours] = await notary.query(every_key(US))
    assert ours == notary.local.server_keys_response()
    verify_signed_json(ours, US, get_verify_key(notary.local.signing_key))
    assert notary.peers.requests == []


@pytest_twisted.ensureDeferred
async def test_a_server_that_cannot_be_reached_is_left_out(notary: Notary) -> None:
    assert await notary.query(every_key("down.example")) == []


@pytest_twisted.ensureDeferred
async def test_the_last_response_is_served_when_the_origin_is_down(notary: Notary) -> None:
    origin = RemoteServer("origin.example")
    notary.peers.serve_keys(origin, valid_until_ts=NOW_MS + 1000)
    await notary.query(every_key(origin.name))
    notary.peers.answers.clear()
    notary.reactor.advance(60)
    [stale] = await notary.query(every_key(origin.name))
    notary.assert_countersigned(stale, origin)
    assert stale["valid_until_ts"] == NOW_MS + 1000
    assert notary.peers.count(origin.name, KEYS_PATH) == 2
    # The origin is not asked again within the minute.
    assert await notary.query(every_key(origin.name)) == [stale]
    assert notary.peers.count(origin.name, KEYS_PATH) == 2


@pytest_twisted.ensureDeferred
async def test_a_response_past_half_its_lifetime_is_fetched_again(notary: Notary) -> None:
    origin = RemoteServer("origin.example")
    notary.peers.serve_keys(origin, valid_until_ts=NOW_MS + 200_000)
    await notary.query(KeyQuery(origin.name, {origin.key_id: None}))
    notary.reactor.advance(100)
    await notary.query(KeyQuery(origin.name, {origin.key_id: None}))
    assert notary.peers.count(origin.name, KEYS_PATH) == 1
    notary.reactor.advance(0.001)
    await notary.query(KeyQuery(origin.name, {origin.key_id: None}))
    assert notary.peers.count(origin.name, KEYS_PATH) == 2


@pytest_twisted.ensureDeferred
async def test_a_later_minimum_valid_until_ts_is_fetched_again(notary: Notary) -> None:
    origin = RemoteServer("origin.example")
    notary.peers.serve_keys(origin, valid_until_ts=NOW_MS + DAY_MS)
    await notary.query(every_key(origin.name))
    await notary.query(every_key(origin.name, NOW_MS + DAY_MS))
    assert notary.peers.count(origin.name, KEYS_PATH) == 1
    notary.peers.serve_keys(origin, valid_until_ts=NOW_MS + 2 * DAY_MS)
    notary.reactor.advance(60)
    [fresh] = await notary.query(KeyQuery(origin.name, {origin.key_id: NOW_MS + DAY_MS + 1}))
    assert fresh["valid_until_ts"] == NOW_MS + 2 * DAY_MS
    assert notary.peers.count(origin.name, KEYS_PATH) == 2


@pytest_twisted.ensureDeferred
async def test_an_old_key_is_not_fetched_again_and_again(notary: Notary) -> None:
    origin = RemoteServer("origin.example")
    old_id = origin.key_id
    origin.rotate(expired_ts=NOW_MS - DAY_MS)
    notary.peers.serve_keys(origin)
    [response] = await notary.query(KeyQuery(origin.name, {old_id: None}))
    assert old_id in response["old_verify_keys"]
    await notary.query(KeyQuery(origin.name, {old_id: None}))
    assert notary.peers.count(origin.name, KEYS_PATH) == 1


@pytest_twisted.ensureDeferred
async def test_servers_outside_the_whitelist_are_not_asked(db: Database) -> None:
    notary = Notary(db, whitelist=frozenset({"allowed.example"}))
    origin = RemoteServer("origin.example")
    notary.peers.serve_keys(origin)
    assert await notary.query(every_key(origin.name)) == []
    assert notary.peers.requests == []


@pytest_twisted.ensureDeferred
async def test_several_servers_are_answered_together(notary: Notary) -> None:
    one, two = RemoteServer("one.example"), RemoteServer("two.example")
    notary.peers.serve_keys(one)
    notary.peers.serve_keys(two)
    answers = await notary.query(every_key(one.name), every_key(two.name), every_key("x.example"))
    assert sorted(answer["server_name"] for answer in answers) == ["one.example", "two.example"]


@pytest_twisted.ensureDeferred
async def test_one_query_asks_at_most_ten_uncached_servers(notary: Notary) -> None:
    servers = [RemoteServer(f"s{i}.example") for i in range(15)]
    for server in servers:
        notary.peers.serve_keys(server)
    answers = await notary.query(*(every_key(server.name) for server in servers))
    asked = {server.name for server in servers if notary.peers.count(server.name, KEYS_PATH)}
    assert len(asked) == MAX_FETCHES_PER_QUERY
    assert sorted(answer["server_name"] for answer in answers) == sorted(asked)
    # The others are fetched when a later query names them.
    answers = await notary.query(*(every_key(server.name) for server in servers))
    assert len(answers) == 15


@pytest_twisted.ensureDeferred
async def test_queries_that_make_the_notary_fetch_are_rate_limited_per_client(
    db: Database,
) -> None:
    notary = Notary(db, limit=RateLimitConfig(per_second=0.5, burst_count=2))
    servers = [RemoteServer(f"s{i}.example") for i in range(4)]
    for server in servers:
        notary.peers.serve_keys(server)
    await notary.query(every_key(servers[0].name))
    await notary.query(every_key(servers[1].name), every_key(servers[2].name))
    with pytest.raises(MatrixError) as refused:
        await notary.query(every_key(servers[3].name))
    assert (refused.value.status, refused.value.errcode) == (429, "M_LIMIT_EXCEEDED")
    assert refused.value.to_json()["retry_after_ms"] == 2000
    # Refused before anything was asked.
    assert notary.peers.count(servers[3].name, KEYS_PATH) == 0
    # What is stored, and our own keys, are still answered: they cost no request.
    stored = await notary.query(*(every_key(server.name) for server in servers[:3]))
    assert len(stored) == 3
    assert len(await notary.query(every_key(US))) == 1
    # Another client has its own allowance; this one's refills with time.
    [fourth] = await notary.query(every_key(servers[3].name), client="198.51.100.1")
    assert fourth["server_name"] == servers[3].name
    notary.reactor.advance(2)
    notary.peers.serve_keys(RemoteServer("s4.example"))
    assert len(await notary.query(every_key("s4.example"))) == 1


def test_a_query_body_is_read_into_queries() -> None:
    body = {
        "server_keys": {
            "one.example": {"ed25519:a": {"minimum_valid_until_ts": 5}, "ed25519:b": {}},
            "two.example:8448": {},
        }
    }
    assert parse_key_queries(body) == [
        KeyQuery("one.example", {"ed25519:a": 5, "ed25519:b": None}),
        KeyQuery("two.example:8448", {}),
    ]
    assert parse_key_queries({"server_keys": {}}) == []


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({}, "M_MISSING_PARAM"),
        ({"server_keys": []}, "M_BAD_JSON"),
        ({"server_keys": {"not a name!": {}}}, "M_INVALID_PARAM"),
        ({"server_keys": {"one.example": []}}, "M_BAD_JSON"),
        ({"server_keys": {"one.example": {"ed25519:a": 5}}}, "M_BAD_JSON"),
        (
            {"server_keys": {"one.example": {"ed25519:a": {"minimum_valid_until_ts": "x"}}}},
            "M_BAD_JSON",
        ),
        (
            {"server_keys": {"one.example": {"ed25519:a": {"minimum_valid_until_ts": True}}}},
            "M_BAD_JSON",
        ),
        ({"server_keys": {"one.example": {"": {}}}}, "M_INVALID_PARAM"),
        (
            {"server_keys": {f"s{n}.example": {} for n in range(MAX_SERVERS_PER_QUERY + 1)}},
            "M_INVALID_PARAM",
        ),
    ],
)
def test_malformed_query_bodies_are_refused(body: dict[str, Any], errcode: str) -> None:
    with pytest.raises(MatrixError) as caught:
        parse_key_queries(body)
    assert (caught.value.status, caught.value.errcode) == (400, errcode)
