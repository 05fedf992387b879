"""The workloads in the order they run, and the settings both servers get for them.

Both servers get the same additions to the client-API benchmark's config (Synapse's
key names; ours reads the same keys):

- ``user_directory: {enabled: true, search_all_users: true}``: every local user is
  in the directory, so (c) needs no 10,000-member room;
- ``ip_range_whitelist: ["127.0.0.1"]``: the push gateway runs on loopback, which
  both servers otherwise refuse to reach.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import yaml

from bench.client_api.client import Client
from bench.client_api.servers import ServerUnderTest
from bench.search import directory, messages, push
from bench.search.sizes import SearchSizes

#: Each fills the figures it is given as it goes (a failure keeps the earlier ones).
Workload = Callable[[ServerUnderTest, Client, SearchSizes, dict[str, Any]], Awaitable[None]]

WORKLOADS: dict[str, Workload] = {
    "search": messages.run,
    "directory": directory.run,
    "push": push.run,
}

SHARED_SETTINGS: dict[str, Any] = {
    "user_directory": {"enabled": True, "search_all_users": True},
    "ip_range_whitelist": ["127.0.0.1"],
}


def adjust(server: ServerUnderTest) -> None:
    """Add :data:`SHARED_SETTINGS` to the server's generated config."""
    path = server.workdir / "homeserver.yaml"
    config = yaml.safe_load(path.read_text())
    config.update(SHARED_SETTINGS)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
