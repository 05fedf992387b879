"""Servers for client-API tests: the real ``homeserver`` process on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.matrix import running_server
from tests.support.server_process import ServerProcess


@pytest.fixture
def open_server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    """Registration open (dummy stage), relaxed rate limits."""
    with running_server(tmp_path, database_config) as server:
        yield server


@pytest.fixture
def token_server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    """Registration needs a registration token."""
    with running_server(
        tmp_path,
        database_config,
        enable_registration_without_verification=False,
        registration_requires_token=True,
    ) as server:
        yield server
