"""Two of our servers federating over TLS on loopback, shared by one module's tests
(starting servers costs seconds), on each database engine.  Tests make their own
users and rooms, so they do not depend on one another's order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.federation.interop.clients import ServerPair
from tests.support.federation import TestCA, database_section, federated_server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPair]:
    engine: str = request.param
    folder = tmp_path_factory.mktemp(f"e2ee-{engine}")
    ca = TestCA.create(folder / "ca")
    with (
        database_section(engine, folder / "a-db") as a_db,
        database_section(engine, folder / "b-db") as b_db,
        federated_server(folder, a_db, ca, name="a") as a,
        federated_server(folder, b_db, ca, name="b") as b,
    ):
        yield ServerPair(pairing="ours-ours", engine=engine, ca=ca, ours=a, other=b)
