"""The federation agent against real TLS servers on 127.0.0.1: certificate checks
(name, trust roots, verification off), the address policy, SRV targets in order,
connection reuse.

spec: server-server-api.md#tls, #resolving-server-names
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import task
from twisted.internet.ssl import TLSVersion
from twisted.web.client import readBody
from twisted.web.http_headers import Headers

from federation.client.agent import (
    ConnectFailed,
    DestinationBlocked,
    FederationTlsPolicy,
    MatrixFederationAgent,
    NoFederationService,
    load_ca_certificates,
)
from federation.client.discovery import ServerResolver
from federation.client.srv import SrvResolver
from federation.client.well_known import WellKnownResolver
from homeserver.clock import Clock
from homeserver.http.outbound import AddressPolicy, IpNetwork, OutboundHttpClient
from tests.federation.client.conftest import DEFAULT_BLACKLIST, LOOPBACK
from tests.federation.client.network import LoopbackNetwork, SrvRecords, TestCA, TlsSite


def make_agent(
    ca: TestCA | None,
    network: LoopbackNetwork,
    *,
    srv: SrvRecords | None = None,
    whitelist: Sequence[IpNetwork] = LOOPBACK,
    verify: bool = True,
    minimum_tls: str = "1",
) -> MatrixFederationAgent:
    tls = FederationTlsPolicy(
        verify_certificates=verify,
        custom_ca_certificates=load_ca_certificates([ca.certificate_path]) if ca else (),
        minimum_tls_version=minimum_tls,
    )
    reactor = network.as_server_reactor()
    clock = Clock(task.Clock())
    well_known = WellKnownResolver(
        clock,
        OutboundHttpClient(
            reactor,
            ip_blacklist=DEFAULT_BLACKLIST,
            ip_whitelist=whitelist,
            user_agent="test",
            tls_policy=tls,
        ),
    )
    srv_resolver = SrvResolver(clock, (srv or SrvRecords()).as_resolver(), rng=random.Random(1))
    return MatrixFederationAgent(
        reactor,
        ServerResolver(well_known, srv_resolver),
        tls,
        AddressPolicy(DEFAULT_BLACKLIST, whitelist),
    )


async def fetch(agent: MatrixFederationAgent, server_name: str, path: str = "/ping") -> Any:
    response = await agent.request(
        b"GET", f"matrix-federation://{server_name}{path}".encode(), Headers()
    )
    body = await readBody(response)
    assert response.code == 200, body
    return json.loads(body)


def pinging(site: TlsSite) -> TlsSite:
    site.json("/ping", {"pong": True})
    return site


@pytest_twisted.ensureDeferred
async def test_a_certificate_for_the_server_name_is_accepted(ca: TestCA, remote: TlsSite) -> None:
    agent = make_agent(ca, LoopbackNetwork({"remote.test": "127.0.0.1"}))
    try:
        assert await fetch(agent, f"remote.test:{pinging(remote).port}") == {"pong": True}
    finally:
        await agent.close()
    [request] = remote.received
    # spec: the Host header is the server name, with its port.
    assert request.headers["host"] == f"remote.test:{remote.port}"


@pytest_twisted.ensureDeferred
async def test_a_certificate_for_another_name_is_refused(ca: TestCA, remote: TlsSite) -> None:
    agent = make_agent(ca, LoopbackNetwork({"other.test": "127.0.0.1"}))
    try:
        with pytest.raises(Exception, match="(?i)certificate|verif|hostname"):
            await fetch(agent, f"other.test:{pinging(remote).port}")
    finally:
        await agent.close()
    assert remote.received == []


@pytest_twisted.ensureDeferred
async def test_a_certificate_from_an_untrusted_ca_is_refused(
    ca: TestCA, remote: TlsSite, tmp_path: Any
) -> None:
    stranger = TestCA.create(tmp_path / "stranger", "stranger CA")
    agent = make_agent(stranger, LoopbackNetwork({"remote.test": "127.0.0.1"}))
    try:
        with pytest.raises(Exception, match="(?i)certificate|verif"):
            await fetch(agent, f"remote.test:{pinging(remote).port}")
    finally:
        await agent.close()
    assert remote.received == []


@pytest_twisted.ensureDeferred
async def test_the_platform_trust_does_not_know_the_test_ca(remote: TlsSite) -> None:
    agent = make_agent(None, LoopbackNetwork({"remote.test": "127.0.0.1"}))
    try:
        with pytest.raises(Exception, match="(?i)certificate|verif"):
            await fetch(agent, f"remote.test:{pinging(remote).port}")
    finally:
        await agent.close()


@pytest_twisted.ensureDeferred
async def test_with_verification_off_any_certificate_is_accepted(
    remote: TlsSite, tmp_path: Any
) -> None:
    agent = make_agent(None, LoopbackNetwork({"other.test": "127.0.0.1"}), verify=False)
    try:
        assert await fetch(agent, f"other.test:{pinging(remote).port}") == {"pong": True}
    finally:
        await agent.close()


@pytest_twisted.ensureDeferred
async def test_the_minimum_tls_version_is_enforced(ca: TestCA) -> None:
    old = pinging(TlsSite.start(ca, ["remote.test"], max_tls=TLSVersion.TLSv1_2))
    network = LoopbackNetwork({"remote.test": "127.0.0.1"})
    strict = make_agent(ca, network, minimum_tls="1.3")
    lenient = make_agent(ca, network, minimum_tls="1.2")
    try:
        with pytest.raises(Exception, match="(?i)version|protocol|handshake|alert"):
            await fetch(strict, f"remote.test:{old.port}")
        assert await fetch(lenient, f"remote.test:{old.port}") == {"pong": True}
    finally:
        await strict.close()
        await lenient.close()
        await old.stop()


@pytest_twisted.ensureDeferred
async def test_an_ip_literal_server_name_needs_a_certificate_for_the_address(
    ca: TestCA, remote: TlsSite
) -> None:
    agent = make_agent(ca, LoopbackNetwork({}))
    try:
        assert await fetch(agent, f"127.0.0.1:{pinging(remote).port}") == {"pong": True}
    finally:
        await agent.close()
    assert remote.received[0].headers["host"] == f"127.0.0.1:{remote.port}"


@pytest_twisted.ensureDeferred
async def test_a_blocked_address_is_refused_without_connecting(ca: TestCA, remote: TlsSite) -> None:
    network = LoopbackNetwork({"remote.test": "127.0.0.1"})
    agent = make_agent(ca, network, whitelist=())
    try:
        with pytest.raises(DestinationBlocked) as raised:
            await fetch(agent, f"remote.test:{pinging(remote).port}")
        assert raised.value.addresses == ("127.0.0.1",)
        # An IP literal goes through the same filter.
        with pytest.raises(DestinationBlocked):
            await fetch(agent, f"127.0.0.1:{remote.port}")
    finally:
        await agent.close()
    assert remote.received == []


@pytest_twisted.ensureDeferred
async def test_srv_targets_are_tried_in_priority_order(ca: TestCA, remote: TlsSite) -> None:
    # The first target (priority 1) refuses connections; the second answers.
    closed_port = _unused_port()
    srv = SrvRecords(
        {
            "_matrix-fed._tcp.remote.test": [
                (1, 0, closed_port, "first.test"),
                (2, 0, pinging(remote).port, "second.test"),
            ]
        }
    )
    network = LoopbackNetwork(
        {"remote.test": "127.0.0.1", "first.test": "127.0.0.1", "second.test": "127.0.0.1"}
    )
    agent = make_agent(ca, network, srv=srv)
    try:
        assert await fetch(agent, "remote.test") == {"pong": True}
    finally:
        await agent.close()
    # The certificate is checked for the server name, never the SRV target, and the
    # Host header is the server name.
    assert remote.received[0].headers["host"] == "remote.test"
    assert [n for n in network.names.lookups if n.endswith(".test")][-2:] == [
        "first.test",
        "second.test",
    ]


@pytest_twisted.ensureDeferred
async def test_an_srv_target_of_dot_means_no_federation(ca: TestCA) -> None:
    srv = SrvRecords({"_matrix-fed._tcp.remote.test": [(0, 0, 0, ".")]})
    agent = make_agent(ca, LoopbackNetwork({"remote.test": "127.0.0.1"}), srv=srv)
    try:
        with pytest.raises(NoFederationService):
            await fetch(agent, "remote.test")
    finally:
        await agent.close()


@pytest_twisted.ensureDeferred
async def test_an_unknown_name_fails_to_connect(ca: TestCA) -> None:
    agent = make_agent(ca, LoopbackNetwork({}))
    try:
        with pytest.raises(ConnectFailed, match=r"nowhere\.test:8448"):
            await fetch(agent, "nowhere.test")
    finally:
        await agent.close()


@pytest_twisted.ensureDeferred
async def test_connections_to_a_server_are_reused(ca: TestCA, remote: TlsSite) -> None:
    network = LoopbackNetwork({"remote.test": "127.0.0.1"})
    agent = make_agent(ca, network)
    try:
        for _ in range(3):
            await fetch(agent, f"remote.test:{pinging(remote).port}")
    finally:
        await agent.close()
    # One connection, so one name lookup, for three requests.
    assert network.names.lookups.count("remote.test") == 1


def _unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest_twisted.ensureDeferred
async def test_a_name_with_and_without_port_do_not_share_connections(
    ca: TestCA, remote: TlsSite
) -> None:
    # "remote.test" (discovered: its SRV record) and "remote.test:80" are two servers,
    # even when they lead to the same place (port 80 is mapped to the test site).
    srv = SrvRecords({"_matrix-fed._tcp.remote.test": [(0, 0, pinging(remote).port, "t.test")]})
    network = LoopbackNetwork(
        {"remote.test": "127.0.0.1", "t.test": "127.0.0.1"}, {80: remote.port}
    )
    agent = make_agent(ca, network, srv=srv)
    try:
        await fetch(agent, "remote.test")
        await fetch(agent, "remote.test:80")
        await fetch(agent, "remote.test")
    finally:
        await agent.close()
    assert [request.headers["host"] for request in remote.received] == [
        "remote.test",
        "remote.test:80",
        "remote.test",
    ]
    # Two connections, one per server name (and the one .well-known attempt).
    assert network.names.lookups == ["remote.test", "t.test", "remote.test"]
