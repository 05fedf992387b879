"""Two of our servers federating on loopback over TLS, shared by a module's tests,
on each database engine: ``ours`` and ``other``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.federation.interop.clients import ServerPair
from tests.support.federation import TestCA, database_section, federated_server


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def servers(
    request: pytest.FixtureRequest, ca: TestCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPair]:
    engine: str = request.param
    folder = tmp_path_factory.mktemp(f"edus-{engine}")
    with ExitStack() as stack:
        ours_db = stack.enter_context(database_section(engine, folder / "ours-db"))
        ours = stack.enter_context(federated_server(folder, ours_db, ca, name="ours"))
        other_db = stack.enter_context(database_section(engine, folder / "other-db"))
        other = stack.enter_context(federated_server(folder, other_db, ca, name="other"))
        yield ServerPair(pairing="ours-ours", engine=engine, ca=ca, ours=ours, other=other)
