"""Binding a listener's addresses (homeserver/http/listeners.py)."""

from __future__ import annotations

import io
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource

from homeserver.config.model import ListenerConfig
from homeserver.http.listeners import (
    FEDERATION_MAX_BODY_SIZE,
    ListenError,
    listen,
    listener_site,
)
from homeserver.http.request import MatrixSite
from homeserver.reactor import installed_reactor
from tests.support.server_process import free_port


def site() -> MatrixSite:
    return MatrixSite(Resource(), max_body_size=1024, reactor=installed_reactor())  # type: ignore[no-untyped-call]


@pytest_twisted.ensureDeferred
async def test_everywhere_means_ipv6_and_ipv4_whether_or_not_they_share_a_socket() -> None:
    port = free_port()
    listener = ListenerConfig(
        port=port, bind_addresses=("::", "0.0.0.0"), resources=frozenset({"federation"})
    )
    ports = listen(installed_reactor(), listener, site(), None)
    try:
        assert 1 <= len(ports) <= 2
    finally:
        for bound in ports:
            await defer.maybeDeferred(bound.stopListening)


@pytest_twisted.ensureDeferred
async def test_a_port_in_use_is_a_listen_error_naming_it() -> None:
    port = free_port()
    first = ListenerConfig(port=port, bind_addresses=("127.0.0.1",), resources=frozenset())
    held = listen(installed_reactor(), first, site(), None)
    try:
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}"):
            listen(installed_reactor(), first, site(), None)
    finally:
        for bound in held:
            await defer.maybeDeferred(bound.stopListening)


class _BodyLength(Resource):
    isLeaf = True

    def render_POST(self, request: Any) -> bytes:
        return str(len(request.content.read())).encode("ascii")


class _NothingStreamed:
    def streamed_body(self, method: bytes, path: bytes, request: Any) -> None:
        return None


async def _post(port: int, size: int) -> tuple[int, bytes]:
    agent = Agent(installed_reactor())  # type: ignore[no-untyped-call]
    response = await agent.request(
        b"POST",
        f"http://127.0.0.1:{port}/".encode("ascii"),
        Headers({b"Content-Type": [b"application/json"]}),
        FileBodyProducer(io.BytesIO(b"x" * size)),  # type: ignore[no-untyped-call]
    )
    return response.code, await readBody(response)


@pytest.mark.parametrize(("resources", "status"), [({"federation"}, 200), ({"client"}, 413)])
@pytest_twisted.ensureDeferred
async def test_federation_listeners_accept_transactions_as_large_as_synapses(
    resources: set[str], status: int
) -> None:
    """Synapse sends transactions up to 200 * 64 KiB; 4 MiB stays the client limit."""
    port = free_port()
    listener = ListenerConfig(
        port=port, bind_addresses=("127.0.0.1",), resources=frozenset(resources)
    )
    served = listener_site(
        installed_reactor(),
        listener,
        _BodyLength(),  # type: ignore[no-untyped-call]
        4 * 1024 * 1024,
        _NothingStreamed(),
    )
    ports = listen(installed_reactor(), listener, served, None)
    try:
        code, body = await _post(port, FEDERATION_MAX_BODY_SIZE - 1024)
        assert code == status
        if status == 200:
            assert body == str(FEDERATION_MAX_BODY_SIZE - 1024).encode("ascii")
    finally:
        for bound in ports:
            await defer.maybeDeferred(bound.stopListening)
