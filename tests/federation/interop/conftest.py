"""Pairs of federating servers on loopback, shared by the tests of one module.

Every scenario runs in both pairings — two of our servers (``ours-ours``), and ours
with a real Synapse (``ours-synapse``) — and on both of our database engines (the
Synapse is on SQLite whatever the engine).  Starting servers costs seconds, so a
pair lives as long as its module: tests within a module must not depend on one
another's order (each makes its own users and rooms), and a test that takes a
server down brings it back before it ends.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from contextlib import ExitStack

import pluggy
import pytest

from tests.federation.interop.clients import ServerPair
from tests.support.federation import FederatedServer, TestCA, database_section, federated_server
from tests.support.synapse_server import synapse_server

#: ``FEDERATION_PAIRINGS=synapse-synapse`` runs the scenarios between two Synapses:
#: a check of the scenarios themselves (what a correct federation makes them see),
#: not of our server; ``ours`` is then a Synapse too.
PAIRINGS = os.environ.get("FEDERATION_PAIRINGS", "ours-ours,ours-synapse").split(",")
ENGINES = os.environ.get("FEDERATION_ENGINES", "sqlite,postgres").split(",")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """The CA every server of the module trusts, and that issued their certificates."""
    return TestCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The database engine of our servers."""
    value: str = request.param
    return value


@pytest.fixture(scope="module", params=PAIRINGS)
def pairing(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def servers(
    pairing: str, engine: str, ca: TestCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPair]:
    """Two running servers federating with each other: ``ours`` is always our
    server; ``other`` is our second one or Synapse, as ``pairing`` says."""
    folder = tmp_path_factory.mktemp(f"{pairing}-{engine}")
    with ExitStack() as stack:
        ours: FederatedServer
        if pairing == "synapse-synapse":
            ours = stack.enter_context(synapse_server(folder, ca, name="synapse-one"))
        else:
            ours_db = stack.enter_context(database_section(engine, folder / "ours-db"))
            ours = stack.enter_context(federated_server(folder, ours_db, ca, name="ours"))
        other: FederatedServer
        if pairing == "ours-ours":
            other_db = stack.enter_context(database_section(engine, folder / "other-db"))
            other = stack.enter_context(federated_server(folder, other_db, ca, name="other"))
        else:
            other = stack.enter_context(synapse_server(folder, ca, name="synapse"))
        yield ServerPair(pairing=pairing, engine=engine, ca=ca, ours=ours, other=other)


#: How much of each server's log a failure report shows.
LOG_TAIL_CHARS = 15_000


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    """A failed scenario's report ends with the tail of both servers' logs: what
    went wrong is usually on the server side, and the tmp folders are gone by CI's end."""
    outcome = yield
    report = outcome.get_result()
    pair = getattr(item, "funcargs", {}).get("servers")
    if report.failed and isinstance(pair, ServerPair):
        for label, server in (("ours", pair.ours), ("other", pair.other)):
            report.sections.append(
                (
                    f"{label} server log ({server.server_name}), tail",
                    server.process.log()[-LOG_TAIL_CHARS:],
                )
            )
