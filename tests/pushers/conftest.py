"""Fixtures of the pusher tests: a push gateway process and a server that may reach it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.matrix import running_server
from tests.support.push_gateway import PushGateway
from tests.support.server_process import ServerProcess


@pytest.fixture
def gateway() -> Iterator[PushGateway]:
    gateway = PushGateway()
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    """Pushers may reach 127.0.0.1 (the gateway), which is blacklisted by default."""
    with running_server(tmp_path, database_config, ip_range_whitelist=["127.0.0.1"]) as server:
        yield server
