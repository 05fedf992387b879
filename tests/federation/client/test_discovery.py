"""Server discovery, step by step as the spec lists them, with ``.well-known`` served
over real HTTPS on 127.0.0.1 and SRV records served from memory.

spec: server-server-api.md#resolving-server-names
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import task
from twisted.names import error as dns_error

from federation.client.agent import FederationTlsPolicy, load_ca_certificates
from federation.client.discovery import InvalidServerName, ResolvedServer, ServerResolver
from federation.client.srv import SrvRecord, SrvResolver, order_records
from federation.client.well_known import WellKnownResolver
from homeserver.clock import Clock
from homeserver.http.outbound import OutboundHttpClient
from tests.federation.client.conftest import DEFAULT_BLACKLIST, LOOPBACK
from tests.federation.client.network import LoopbackNetwork, SrvRecords, TestCA, TlsSite

WELL_KNOWN = "/.well-known/matrix/server"
HOUR = 3600.0


@attrs.define
class Discovery:
    resolver: ServerResolver
    time: task.Clock
    srv: SrvRecords
    site: TlsSite
    http: OutboundHttpClient

    def well_known_fetches(self) -> int:
        return sum(1 for request in self.site.received if request.uri == WELL_KNOWN)

    async def resolve(self, server_name: str) -> ResolvedServer:
        return await self.resolver.resolve(server_name)


def make_discovery(
    ca: TestCA,
    site: TlsSite,
    srv: Mapping[str, Sequence[tuple[int, int, int, str]] | Exception] | None = None,
    *,
    whitelist: Any = LOOPBACK,
) -> Discovery:
    # remote.test's .well-known is the test site (port 443 mapped to it).
    network = LoopbackNetwork({"remote.test": "127.0.0.1"}, {443: site.port})
    tls = FederationTlsPolicy(custom_ca_certificates=load_ca_certificates([ca.certificate_path]))
    http = OutboundHttpClient(
        network.as_server_reactor(),
        ip_blacklist=DEFAULT_BLACKLIST,
        ip_whitelist=whitelist,
        user_agent="test",
        tls_policy=tls,
    )
    time = task.Clock()
    time.advance(1_700_000_000)
    clock = Clock(time)
    records = SrvRecords(srv)
    resolver = ServerResolver(
        WellKnownResolver(clock, http, rng=random.Random(3)),
        SrvResolver(clock, records.as_resolver(), rng=random.Random(3)),
    )
    return Discovery(resolver, time, records, site, http)


@pytest_twisted.async_yield_fixture
async def discovery(ca: TestCA, remote: TlsSite) -> Any:
    found = make_discovery(ca, remote)
    yield found
    await found.http.close()


# --- steps 1 and 2: no lookups -----------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_an_ip_literal_is_used_as_it_is(discovery: Discovery) -> None:
    assert await discovery.resolve("192.0.2.7") == ResolvedServer(
        "192.0.2.7", "192.0.2.7", (("192.0.2.7", 8448),)
    )
    assert await discovery.resolve("[2001:db8::1]:8000") == ResolvedServer(
        "[2001:db8::1]:8000", "2001:db8::1", (("2001:db8::1", 8000),)
    )
    assert discovery.site.received == [] and discovery.srv.queries == []


@pytest_twisted.ensureDeferred
async def test_an_explicit_port_skips_well_known_and_srv(discovery: Discovery) -> None:
    assert await discovery.resolve("remote.test:1234") == ResolvedServer(
        "remote.test:1234", "remote.test", (("remote.test", 1234),)
    )
    assert discovery.site.received == [] and discovery.srv.queries == []


@pytest_twisted.ensureDeferred
async def test_invalid_server_names_are_refused(discovery: Discovery) -> None:
    for name in ("", "exa mple.org", "host:0", "host:99999", "[::1", "a/b"):
        with pytest.raises(InvalidServerName):
            await discovery.resolve(name)


# --- step 3: delegation through .well-known ----------------------------------------


@pytest_twisted.ensureDeferred
async def test_delegation_to_a_name_with_port(discovery: Discovery) -> None:
    discovery.site.json(WELL_KNOWN, {"m.server": "delegated.test:4321"})
    assert await discovery.resolve("remote.test") == ResolvedServer(
        "delegated.test:4321", "delegated.test", (("delegated.test", 4321),)
    )
    [request] = discovery.site.received
    assert request.headers["host"] == "remote.test"


@pytest_twisted.ensureDeferred
async def test_delegation_to_an_ip_literal(discovery: Discovery) -> None:
    discovery.site.json(WELL_KNOWN, {"m.server": "[2001:db8::2]"})
    assert await discovery.resolve("remote.test") == ResolvedServer(
        "[2001:db8::2]", "2001:db8::2", (("2001:db8::2", 8448),)
    )


@pytest_twisted.ensureDeferred
async def test_delegation_without_port_uses_the_delegated_names_srv(
    ca: TestCA, remote: TlsSite
) -> None:
    remote.json(WELL_KNOWN, {"m.server": "delegated.test"})
    found = make_discovery(
        ca,
        remote,
        {
            "_matrix-fed._tcp.delegated.test": [(10, 0, 7000, "b.test"), (5, 0, 7001, "a.test")],
            "_matrix._tcp.delegated.test": [(0, 0, 9999, "legacy.test")],
        },
    )
    try:
        assert await found.resolve("remote.test") == ResolvedServer(
            "delegated.test", "delegated.test", (("a.test", 7001), ("b.test", 7000))
        )
    finally:
        await found.http.close()
    assert found.srv.queries == ["_matrix-fed._tcp.delegated.test"]


@pytest_twisted.ensureDeferred
async def test_the_deprecated_srv_name_is_the_fallback(ca: TestCA, remote: TlsSite) -> None:
    remote.json(WELL_KNOWN, {"m.server": "delegated.test"})
    found = make_discovery(
        ca, remote, {"_matrix._tcp.delegated.test": [(0, 0, 9999, "legacy.test")]}
    )
    try:
        assert await found.resolve("remote.test") == ResolvedServer(
            "delegated.test", "delegated.test", (("legacy.test", 9999),)
        )
    finally:
        await found.http.close()
    assert found.srv.queries == ["_matrix-fed._tcp.delegated.test", "_matrix._tcp.delegated.test"]


@pytest_twisted.ensureDeferred
async def test_delegation_without_srv_goes_to_port_8448(discovery: Discovery) -> None:
    discovery.site.json(WELL_KNOWN, {"m.server": "delegated.test"})
    assert await discovery.resolve("remote.test") == ResolvedServer(
        "delegated.test", "delegated.test", (("delegated.test", 8448),)
    )


@pytest_twisted.ensureDeferred
async def test_redirects_of_well_known_are_followed(discovery: Discovery) -> None:
    def redirect(request: Any, body: bytes) -> bytes:
        request.redirect(b"/elsewhere")
        return b""

    discovery.site.routes[WELL_KNOWN] = redirect
    discovery.site.json("/elsewhere", {"m.server": "delegated.test:1"})
    assert (await discovery.resolve("remote.test")).host_header == "delegated.test:1"


# --- steps 4-6: no delegation ------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_without_well_known_the_hostnames_srv_is_used(ca: TestCA, remote: TlsSite) -> None:
    found = make_discovery(ca, remote, {"_matrix-fed._tcp.remote.test": [(0, 0, 8000, "t.test")]})
    try:
        assert await found.resolve("remote.test") == ResolvedServer(
            "remote.test", "remote.test", (("t.test", 8000),)
        )
    finally:
        await found.http.close()


@pytest.mark.parametrize(
    "answer",
    [
        "404",
        "not json",
        "a list",
        "no m.server",
        "m.server not a string",
        "m.server invalid",
    ],
)
@pytest_twisted.ensureDeferred
async def test_an_invalid_well_known_falls_back_to_the_hostname(
    discovery: Discovery, answer: str
) -> None:
    site = discovery.site
    if answer == "404":
        site.json(WELL_KNOWN, {"errcode": "M_NOT_FOUND"}, status=404)
    elif answer == "not json":
        site.raw(WELL_KNOWN, b"<html>hello</html>")
    elif answer == "a list":
        site.json(WELL_KNOWN, ["delegated.test"])
    elif answer == "no m.server":
        site.json(WELL_KNOWN, {"m.homeserver": "delegated.test"})
    elif answer == "m.server not a string":
        site.json(WELL_KNOWN, {"m.server": 7})
    else:
        site.json(WELL_KNOWN, {"m.server": "bad name:port"})
    assert await discovery.resolve("remote.test") == ResolvedServer(
        "remote.test", "remote.test", (("remote.test", 8448),)
    )
    assert discovery.well_known_fetches() == 1
    assert discovery.srv.queries == ["_matrix-fed._tcp.remote.test", "_matrix._tcp.remote.test"]


@pytest_twisted.ensureDeferred
async def test_a_well_known_host_at_a_blocked_address_is_not_fetched(
    ca: TestCA, remote: TlsSite
) -> None:
    found = make_discovery(ca, remote, whitelist=())
    remote.json(WELL_KNOWN, {"m.server": "delegated.test:1"})
    try:
        assert (await found.resolve("remote.test")).host_header == "remote.test"
    finally:
        await found.http.close()
    assert remote.received == []


# --- caching -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_well_known_is_cached_for_a_day_without_headers(discovery: Discovery) -> None:
    discovery.site.json(WELL_KNOWN, {"m.server": "delegated.test:1"})
    await discovery.resolve("remote.test")
    discovery.time.advance(21 * HOUR)  # a day less the jitter (at most 10%)
    await discovery.resolve("remote.test")
    assert discovery.well_known_fetches() == 1
    discovery.time.advance(3 * HOUR + 1)
    await discovery.resolve("remote.test")
    assert discovery.well_known_fetches() == 2


@pytest_twisted.ensureDeferred
async def test_well_known_cache_follows_max_age(discovery: Discovery) -> None:
    discovery.site.json(
        WELL_KNOWN, {"m.server": "delegated.test:1"}, cache_control="public, max-age=1200"
    )
    await discovery.resolve("remote.test")
    discovery.time.advance(1000)
    await discovery.resolve("remote.test")
    assert discovery.well_known_fetches() == 1
    discovery.time.advance(201)
    await discovery.resolve("remote.test")
    assert discovery.well_known_fetches() == 2


@pytest_twisted.ensureDeferred
async def test_well_known_cache_is_at_most_48_hours(discovery: Discovery) -> None:
    discovery.site.json(
        WELL_KNOWN, {"m.server": "delegated.test:1"}, cache_control="max-age=8640000"
    )
    await discovery.resolve("remote.test")
    discovery.time.advance(48 * HOUR + 1)
    await discovery.resolve("remote.test")
    assert discovery.well_known_fetches() == 2


@pytest_twisted.ensureDeferred
async def test_an_invalid_answer_is_cached_for_an_hour(discovery: Discovery) -> None:
    discovery.site.json(WELL_KNOWN, {}, status=404)
    await discovery.resolve("remote.test")
    discovery.time.advance(50 * 60)
    await discovery.resolve("remote.test")
    assert discovery.well_known_fetches() == 1
    discovery.site.json(WELL_KNOWN, {"m.server": "delegated.test:1"})
    discovery.time.advance(11 * 60)
    assert (await discovery.resolve("remote.test")).host_header == "delegated.test:1"
    assert discovery.well_known_fetches() == 2


@pytest_twisted.ensureDeferred
async def test_a_temporary_failure_keeps_the_last_delegation(discovery: Discovery) -> None:
    discovery.site.json(WELL_KNOWN, {"m.server": "delegated.test:1"}, cache_control="max-age=600")
    await discovery.resolve("remote.test")
    discovery.site.json(WELL_KNOWN, {"errcode": "M_UNKNOWN"}, status=502)
    discovery.time.advance(601)
    assert (await discovery.resolve("remote.test")).host_header == "delegated.test:1"
    assert discovery.well_known_fetches() == 2
    # Retried after about two minutes, then after about four.
    discovery.time.advance(121)
    await discovery.resolve("remote.test")
    assert discovery.well_known_fetches() == 3
    discovery.time.advance(121)
    await discovery.resolve("remote.test")
    assert discovery.well_known_fetches() == 3
    discovery.time.advance(120)
    assert (await discovery.resolve("remote.test")).host_header == "delegated.test:1"
    assert discovery.well_known_fetches() == 4


@pytest_twisted.ensureDeferred
async def test_srv_answers_are_cached_for_their_ttl(ca: TestCA, remote: TlsSite) -> None:
    found = make_discovery(ca, remote, {"_matrix-fed._tcp.remote.test": [(0, 0, 8000, "t.test")]})
    found.srv.ttl = 300
    try:
        await found.resolve("remote.test")
        found.time.advance(299)
        await found.resolve("remote.test")
        assert found.srv.queries == ["_matrix-fed._tcp.remote.test"]
        found.time.advance(2)
        await found.resolve("remote.test")
        assert found.srv.queries == ["_matrix-fed._tcp.remote.test"] * 2
    finally:
        await found.http.close()


@pytest_twisted.ensureDeferred
async def test_a_failed_srv_lookup_uses_the_expired_answer(ca: TestCA, remote: TlsSite) -> None:
    found = make_discovery(ca, remote, {"_matrix-fed._tcp.remote.test": [(0, 0, 8000, "t.test")]})
    try:
        await found.resolve("remote.test")
        found.srv.records["_matrix-fed._tcp.remote.test"] = dns_error.DNSServerError("SERVFAIL")
        found.time.advance(301)
        assert (await found.resolve("remote.test")).targets == (("t.test", 8000),)
    finally:
        await found.http.close()


def test_srv_records_are_ordered_by_priority_then_weight() -> None:
    records = [
        SrvRecord(priority=20, weight=0, port=1, target="late.test"),
        SrvRecord(priority=10, weight=90, port=1, target="heavy.test"),
        SrvRecord(priority=10, weight=10, port=1, target="light.test"),
    ]
    rng = random.Random(7)
    firsts = [order_records(records, rng)[0].target for _ in range(1000)]
    for _ in range(100):
        assert order_records(records, rng)[-1].target == "late.test"
    assert 800 < firsts.count("heavy.test") < 980
    assert firsts.count("heavy.test") + firsts.count("light.test") == 1000
