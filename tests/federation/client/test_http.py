"""The federation HTTP client against a real HTTPS server on 127.0.0.1: signed
requests the X-Matrix parser accepts and whose signatures verify, JSON in and out,
Matrix errors, destinations refused before sending, backoff, size cap, timeout.

spec: server-server-api.md#request-authentication, #api-standards
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import pytest
import pytest_twisted
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import verify_signed_json
from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater

from federation.client.backoff import DestinationBackoff
from federation.client.http import (
    DestinationNotAllowed,
    FederationHttpClient,
    FederationRequestError,
    FederationUnreachable,
    NotRetryingDestination,
    ResponseTooLarge,
)
from federation.transport.x_matrix import parse_x_matrix, signed_request_json
from homeserver.clock import Clock
from homeserver.events.canonical import encode_canonical_json
from homeserver.http.outbound import IpNetwork
from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from homeserver.storage.destinations import DestinationStore
from tests.federation.client.conftest import LOOPBACK
from tests.federation.client.network import LoopbackNetwork, TestCA, TlsSite
from tests.federation.client.test_agent import make_agent

OUR_NAME = "us.test"
SIGNING_KEY = generate_signing_key("a_test")


@attrs.define
class Setup:
    client: FederationHttpClient
    backoff: DestinationBackoff
    site: TlsSite
    destination: str
    agent: Any


async def make_setup(
    ca: TestCA,
    site: TlsSite,
    db: Database,
    *,
    whitelist: Sequence[IpNetwork] = LOOPBACK,
    domain_whitelist: frozenset[str] | None = None,
) -> Setup:
    network = LoopbackNetwork({"remote.test": "127.0.0.1"})
    agent = make_agent(ca, network, whitelist=whitelist)
    backoff = DestinationBackoff(
        DestinationStore(db),
        Clock(installed_reactor()),
        min_interval_ms=60_000,
        multiplier=2.0,
        max_interval_ms=600_000,
        rng=random.Random(1),
    )
    client = FederationHttpClient(
        reactor=installed_reactor(),
        agent=agent,
        server_name=OUR_NAME,
        signing_key=SIGNING_KEY,
        backoff=backoff,
        domain_whitelist=domain_whitelist,
        user_agent="homeserver-test/1",
    )
    return Setup(client, backoff, site, f"remote.test:{site.port}", agent)


@pytest_twisted.async_yield_fixture
async def setup(ca: TestCA, remote: TlsSite, sqlite_db: Database) -> AsyncIterator[Setup]:
    made = await make_setup(ca, remote, sqlite_db)
    yield made
    await made.agent.close()


def echo(site: TlsSite, path: str, status: int = 200) -> None:
    def answer(request: Any, body: bytes) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps({"echo": True}).encode()

    site.routes[path] = answer


def verify_request(setup: Setup, index: int = -1) -> Any:
    """Check the received request as a receiving server would; its JSON body."""
    request = setup.site.received[index]
    header = parse_x_matrix(request.headers["authorization"])
    assert header.origin == OUR_NAME
    assert header.destination == setup.destination
    assert header.key_id == "ed25519:a_test"
    content = json.loads(request.body) if request.body else None
    signed = signed_request_json(
        request.method, request.uri, header.origin, setup.destination, content
    )
    signed["signatures"] = {header.origin: {header.key_id: header.signature}}
    verify_signed_json(signed, OUR_NAME, get_verify_key(SIGNING_KEY))
    return content


@pytest_twisted.ensureDeferred
async def test_a_get_is_signed_for_the_destination_and_its_query(setup: Setup) -> None:
    echo(setup.site, "/_matrix/federation/v1/state_ids/%21room%3Aremote.test")
    answer = await setup.client.get_json(
        setup.destination,
        "/_matrix/federation/v1/state_ids/%21room%3Aremote.test",
        args={"event_id": "$a b&c", "v": ["1", "2"]},
    )
    assert answer == {"echo": True}
    [request] = setup.site.received
    assert request.uri == (
        "/_matrix/federation/v1/state_ids/%21room%3Aremote.test?event_id=%24a%20b%26c&v=1&v=2"
    )
    assert request.headers["user-agent"] == "homeserver-test/1"
    assert request.headers["host"] == setup.destination
    assert verify_request(setup) is None


@pytest_twisted.ensureDeferred
async def test_a_put_sends_canonical_json_and_signs_it(setup: Setup) -> None:
    echo(setup.site, "/_matrix/federation/v1/send/1")
    body = {"pdus": [], "origin": OUR_NAME, "b": "é", "a": 1}
    assert await setup.client.put_json(
        setup.destination, "/_matrix/federation/v1/send/1", body
    ) == {"echo": True}
    [request] = setup.site.received
    assert request.method == "PUT"
    assert request.body == encode_canonical_json(body)
    assert request.headers["content-type"] == "application/json"
    assert verify_request(setup) == body


@pytest_twisted.ensureDeferred
async def test_an_unauthenticated_request_carries_no_signature(setup: Setup) -> None:
    echo(setup.site, "/_matrix/key/v2/server")
    await setup.client.get_json(setup.destination, "/_matrix/key/v2/server", authenticated=False)
    assert "authorization" not in setup.site.received[0].headers


@pytest_twisted.ensureDeferred
async def test_a_matrix_error_is_parsed_and_a_4xx_means_the_server_is_up(setup: Setup) -> None:
    setup.site.json("/_matrix/x", {"errcode": "M_FORBIDDEN", "error": "no", "extra": 1}, 403)
    with pytest.raises(FederationRequestError) as raised:
        await setup.client.post_json(setup.destination, "/_matrix/x", {})
    error = raised.value
    assert (error.status, error.errcode, error.error) == (403, "M_FORBIDDEN", "no")
    assert error.body == {"errcode": "M_FORBIDDEN", "error": "no", "extra": 1}
    assert await setup.backoff.is_backing_off(setup.destination) is None


@pytest_twisted.ensureDeferred
async def test_a_5xx_backs_off_until_a_success(setup: Setup) -> None:
    up: list[str] = []
    setup.backoff.on_destination_up.append(up.append)
    setup.site.raw("/_matrix/x", b"<html>oops</html>", status=502)
    with pytest.raises(FederationRequestError) as raised:
        await setup.client.get_json(setup.destination, "/_matrix/x")
    assert (raised.value.status, raised.value.errcode, raised.value.body) == (502, None, None)

    with pytest.raises(NotRetryingDestination) as backing_off:
        await setup.client.get_json(setup.destination, "/_matrix/x")
    assert backing_off.value.retry_after_ms > 0
    assert len(setup.site.received) == 1  # not sent

    echo(setup.site, "/_matrix/x")
    assert await setup.client.get_json(setup.destination, "/_matrix/x", ignore_backoff=True)
    assert up == [setup.destination]
    assert await setup.client.get_json(setup.destination, "/_matrix/x") == {"echo": True}


@pytest_twisted.ensureDeferred
async def test_429_counts_as_a_failure(setup: Setup) -> None:
    setup.site.json("/_matrix/x", {"errcode": "M_LIMIT_EXCEEDED"}, 429)
    with pytest.raises(FederationRequestError):
        await setup.client.get_json(setup.destination, "/_matrix/x")
    assert await setup.backoff.is_backing_off(setup.destination) is not None


@pytest_twisted.ensureDeferred
async def test_an_unreachable_server_is_backed_off(setup: Setup) -> None:
    await setup.site.stop()
    with pytest.raises(FederationUnreachable) as raised:
        await setup.client.get_json(setup.destination, "/_matrix/x")
    assert not isinstance(raised.value, NotRetryingDestination)
    assert "refused" in raised.value.reason.lower()
    with pytest.raises(NotRetryingDestination):
        await setup.client.get_json(setup.destination, "/_matrix/x")


@pytest_twisted.ensureDeferred
async def test_forbidden_destinations_are_refused_before_sending(
    ca: TestCA, remote: TlsSite, sqlite_db: Database
) -> None:
    made = await make_setup(ca, remote, sqlite_db, domain_whitelist=frozenset({"friend.test"}))
    try:
        for destination in (OUR_NAME, made.destination, "not a name", ""):
            with pytest.raises(DestinationNotAllowed):
                await made.client.get_json(destination, "/_matrix/x")
    finally:
        await made.agent.close()
    assert remote.received == []
    assert await made.backoff.is_backing_off(made.destination) is None


@pytest_twisted.ensureDeferred
async def test_a_blocked_destination_is_unreachable(
    ca: TestCA, remote: TlsSite, sqlite_db: Database
) -> None:
    made = await make_setup(ca, remote, sqlite_db, whitelist=())
    try:
        with pytest.raises(FederationUnreachable, match="blocked address"):
            await made.client.get_json(made.destination, "/_matrix/x")
    finally:
        await made.agent.close()
    assert remote.received == []


@pytest_twisted.ensureDeferred
async def test_a_response_over_max_size_is_refused(setup: Setup) -> None:
    setup.site.raw("/_matrix/big", b"[" + b"1," * 5000 + b"1]")
    with pytest.raises(ResponseTooLarge):
        await setup.client.get_json(setup.destination, "/_matrix/big", max_size=1000)
    # The server answered: it is not backed off.
    assert await setup.backoff.is_backing_off(setup.destination) is None
    assert len(await setup.client.get_json(setup.destination, "/_matrix/big")) == 5001


@pytest_twisted.ensureDeferred
async def test_a_server_that_never_answers_times_out(setup: Setup) -> None:
    setup.site.never_answer("/_matrix/slow")
    with pytest.raises(FederationUnreachable, match="no complete answer within 0.3 seconds"):
        await setup.client.get_json(setup.destination, "/_matrix/slow", timeout=0.3)
    assert await setup.backoff.is_backing_off(setup.destination) is not None


@pytest_twisted.ensureDeferred
async def test_a_2xx_that_is_not_json_is_an_error(setup: Setup) -> None:
    setup.site.raw("/_matrix/x", b"{not json")
    with pytest.raises(FederationRequestError, match="not valid JSON"):
        await setup.client.get_json(setup.destination, "/_matrix/x")


@pytest_twisted.ensureDeferred
async def test_get_file_returns_bytes_and_redirects_unfollowed(setup: Setup) -> None:
    def media(request: Any, body: bytes) -> bytes:
        request.setHeader(b"Content-Type", b"image/png")
        return b"\x89PNG..."

    def moved(request: Any, body: bytes) -> bytes:
        request.setResponseCode(307)
        request.setHeader(b"Location", b"https://cdn.test/file")
        return b""

    setup.site.routes["/_matrix/media"] = media
    setup.site.routes["/_matrix/moved"] = moved
    found = await setup.client.get_file(setup.destination, "/_matrix/media", max_size=100)
    assert (found.status, found.body, found.headers["content-type"]) == (
        200,
        b"\x89PNG...",
        "image/png",
    )
    verify_request(setup)
    redirect = await setup.client.get_file(setup.destination, "/_matrix/moved", max_size=100)
    assert (redirect.status, redirect.headers["location"]) == (307, "https://cdn.test/file")
    setup.site.json("/_matrix/gone", {"errcode": "M_NOT_FOUND"}, 404)
    with pytest.raises(FederationRequestError):
        await setup.client.get_file(setup.destination, "/_matrix/gone", max_size=100)


def test_paths_must_be_encoded_by_the_caller() -> None:
    from federation.client.http import _request_target

    assert _request_target("/_matrix/a%2Fb", None) == "/_matrix/a%2Fb"
    for bad in ("_matrix/x", "/_matrix/a b", "/_matrix/x?y=1", "/_matrix/é"):
        with pytest.raises(ValueError):
            _request_target(bad, None)


@pytest_twisted.ensureDeferred
async def test_a_caller_giving_up_is_not_a_failure_of_the_destination(setup: Setup) -> None:
    setup.site.never_answer("/_matrix/slow")
    waiting = defer.ensureDeferred(setup.client.get_json(setup.destination, "/_matrix/slow"))
    while not setup.site.received:  # the request has reached the server
        await deferLater(installed_reactor(), 0.01, lambda: None)
    waiting.cancel()
    with pytest.raises(defer.CancelledError):
        await waiting
    assert await setup.backoff.is_backing_off(setup.destination) is None


class _HeaderFlood(Protocol):
    """Answers any request with a status line and then 2 MB of headers that never end."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Padding: " + b"a" * 1000 + b"\r\n"
        for _ in range(2000):
            self.transport.write(line)


@pytest_twisted.ensureDeferred
async def test_endless_response_headers_are_cut_off(
    ca: TestCA, remote: TlsSite, sqlite_db: Database
) -> None:
    factory = Factory.forProtocol(_HeaderFlood)
    flood = installed_reactor().listenSSL(  # type: ignore[attr-defined]
        0, factory, ca.server_options(["remote.test"]), interface="127.0.0.1"
    )
    made = await make_setup(ca, remote, sqlite_db)
    try:
        destination = f"remote.test:{flood.getHost().port}"
        with pytest.raises(FederationUnreachable) as raised:
            await made.client.get_json(destination, "/_matrix/x", timeout=30)
        # Dropped, not waited out.
        assert "no complete answer" not in raised.value.reason
    finally:
        await made.agent.close()
        await flood.stopListening()
