"""The whole outbound client — built from a federation config as the server builds
it — against our own server's TLS federation listener in a real process.

spec: server-server-api.md#resolving-server-names (an explicit port: straight to
it), #tls (the test CA as ``federation_custom_ca_list``)
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from signedjson.key import generate_signing_key

from federation.client.assembly import FederationClient, build_federation_client
from federation.client.http import FederationRequestError
from homeserver.clock import Clock
from homeserver.config.federation import FederationConfig
from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from tests.support.federation import LOOPBACK_RANGES, FederatedServer, TestCA, federated_server


@pytest.fixture
def ours(tmp_path: Path) -> Iterator[tuple[FederatedServer, TestCA]]:
    ca = TestCA.create(tmp_path / "ca")
    database = {"name": "sqlite3", "args": {"database": str(tmp_path / "remote.db")}}
    with federated_server(tmp_path, database, ca, name="remote") as server:
        yield server, ca


@pytest_twisted.async_yield_fixture
async def client(
    ours: tuple[FederatedServer, TestCA], sqlite_db: Database
) -> AsyncIterator[FederationClient]:
    _, ca = ours
    config = FederationConfig(
        custom_ca_list=(ca.certificate_path,),
        ip_range_whitelist=tuple(ipaddress.ip_network(r) for r in LOOPBACK_RANGES),
    )
    built = build_federation_client(
        config=config,
        server_name="us.test",
        reactor=installed_reactor(),
        clock=Clock(installed_reactor()),
        database=sqlite_db,
        signing_key=generate_signing_key("a_us"),
    )
    yield built
    await built.close()


@pytest_twisted.ensureDeferred
async def test_our_server_answers_over_verified_tls(
    ours: tuple[FederatedServer, TestCA], client: FederationClient
) -> None:
    server, _ = ours
    version: Any = await client.http.get_json(
        server.server_name, "/_matrix/federation/v1/version", authenticated=False
    )
    assert isinstance(version["server"]["name"], str)

    with pytest.raises(FederationRequestError) as raised:
        await client.http.get_json(server.server_name, "/_matrix/federation/v1/no_such_thing")
    assert (raised.value.status, raised.value.errcode) == (404, "M_UNRECOGNIZED")
    # A 404 is an answer: the server is not backed off.
    assert await client.backoff.is_backing_off(server.server_name) is None
