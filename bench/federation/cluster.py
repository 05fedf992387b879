"""Federating servers for the benchmark: ours and Synapse, on loopback over TLS.

Built on the test harness (tests/support/federation.py, tests/support/synapse_server.py:
a test CA, server names ``localhost:<port>``, loopback allowed), with the benchmark's
settings on top, the same for both servers: every ``rc_*`` limit raised out of reach
(bench/client_api/servers.py), the cheapest password hash each allows, log level
WARNING.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.client_api.servers import raised_rate_limits
from tests.support.federation import FederatedServer, TestCA, database_section, federated_server
from tests.support.server_process import free_port
from tests.support.synapse_server import (
    RELAXED_SYNAPSE_LIMITS,
    SynapseProcess,
    SynapseServer,
    synapse_config,
)

LOG_LEVEL = "WARNING"


def _synapse_log_config(folder: Path) -> Path:
    """A logging config sending Synapse's WARNING and above to stderr (its default,
    without one, logs every request at INFO: costly under load)."""
    path = folder / "log.yaml"
    config = {
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"level": LOG_LEVEL, "handlers": ["console"]},
        "loggers": {"synapse.storage.SQL": {"level": LOG_LEVEL}},
        "disable_existing_loggers": False,
    }
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def synapse(folder: Path, ca: TestCA, *, name: str) -> Iterator[SynapseServer]:
    """A running Synapse named ``localhost:<port>`` (SQLite), stopped on exit."""
    home = folder / name
    home.mkdir(parents=True, exist_ok=True)
    federation_port = free_port()
    config = synapse_config(
        home, ca, name=name, client_port=free_port(), federation_port=federation_port
    )
    config.update(raised_rate_limits())
    config["rc_federation"] = RELAXED_SYNAPSE_LIMITS["rc_federation"]
    config["federation_rr_transactions_per_room_per_second"] = 1000
    config["bcrypt_rounds"] = 4  # the cheapest Synapse allows: 1,000 accounts are made
    config["log_config"] = str(_synapse_log_config(home))
    config["caches"] = {"sync_response_cache_duration": 0}
    process = SynapseProcess(home, config)
    process.start(timeout=180)
    try:
        yield SynapseServer(
            process=process,
            server_name=config["server_name"],
            federation_port=federation_port,
            federation_url=f"https://localhost:{federation_port}",
            signing_key_path=Path(config["signing_key_path"]),
        )
    finally:
        process.stop()


@contextmanager
def ours(
    folder: Path, ca: TestCA, *, name: str, engine: str = "sqlite"
) -> Iterator[FederatedServer]:
    """Our server named ``localhost:<port>``, stopped on exit."""
    overrides: dict[str, Any] = {**raised_rate_limits(), "log_level": LOG_LEVEL}
    with database_section(engine, folder / f"{name}-db") as database:
        with federated_server(folder, database, ca, name=name, **overrides) as server:
            yield server
