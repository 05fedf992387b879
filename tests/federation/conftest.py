"""Fixtures shared by the federation tests (``tests/federation/...``).

Only fixtures more than one federation test folder needs belong here; a folder's
own fixtures live in its own ``conftest.py`` (``interop/`` has its own ``ca`` and
``servers``, which pair ours with Synapse too).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.federation.interop.clients import ServerPair
from tests.support.federation import TestCA, database_section, federated_server


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """The CA every server of the module trusts, and that issued their certificates."""
    return TestCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def servers(
    request: pytest.FixtureRequest, ca: TestCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPair]:
    """Two of our servers federating on loopback over TLS, on each database engine:
    ``ours`` and ``other``.  Shared by one module's tests, since starting servers
    costs seconds: tests make their own users and rooms, so they do not depend on
    one another's order."""
    engine: str = request.param
    # The test folder's name (edus, history, e2ee...) tells the servers' folders apart.
    folder = tmp_path_factory.mktemp(f"{request.path.parent.name}-{engine}")
    with ExitStack() as stack:
        ours_db = stack.enter_context(database_section(engine, folder / "ours-db"))
        ours = stack.enter_context(federated_server(folder, ours_db, ca, name="ours"))
        other_db = stack.enter_context(database_section(engine, folder / "other-db"))
        other = stack.enter_context(federated_server(folder, other_db, ca, name="other"))
        yield ServerPair(pairing="ours-ours", engine=engine, ca=ca, ours=ours, other=other)
