"""Fixtures of the outbound client's tests: a test CA, an HTTPS site it vouches for,
and the pieces of a client wired to the offline network of ``network.py``."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_twisted

from homeserver.config.federation import DEFAULT_FEDERATION_IP_BLACKLIST
from homeserver.http.outbound import IpNetwork
from homeserver.reactor import installed_reactor
from homeserver.storage.database import Database
from homeserver.storage.migrations import prepare_database
from tests.federation.client.network import TestCA, TlsSite

DEFAULT_BLACKLIST: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(network) for network in DEFAULT_FEDERATION_IP_BLACKLIST
)
LOOPBACK: tuple[IpNetwork, ...] = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA.create(tmp_path / "ca")


@pytest_twisted.async_yield_fixture
async def remote(ca: TestCA) -> AsyncIterator[TlsSite]:
    """An HTTPS site with a certificate for ``remote.test``, ``localhost`` and
    ``127.0.0.1``."""
    site = TlsSite.start(ca, ["remote.test", "localhost", "127.0.0.1"])
    yield site
    await site.stop()


@pytest_twisted.async_yield_fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database, for tests whose subject is not storage (the
    backoff's store runs on both engines in its own tests)."""
    database = Database.connect(
        "sqlite3", {"database": str(tmp_path / "client.db")}, reactor=installed_reactor()
    )
    await prepare_database(database)
    yield database
    database.close()
