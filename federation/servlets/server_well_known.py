"""``GET /.well-known/matrix/server`` on client listeners (``serve_server_wellknown``):
tells other servers to reach us on port 443 of our server name's host, where the
reverse proxy in front of the client listener passes federation traffic on.

As Synapse: the server name's own port when it has one, else 443.

spec: server-server-api.md#getwell-knownmatrixserver, #resolving-server-names
"""

from __future__ import annotations

from typing import Any

from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router
from homeserver.identifiers import parse_server_name

PATH = "/.well-known/matrix/server"


def delegation(server_name: str) -> dict[str, str]:
    """The ``m.server`` answer for ``server_name``."""
    host, port = parse_server_name(server_name)
    return {"m.server": f"{host}:{443 if port is None else port}"}


def register(router: Router, *, server_name: str) -> None:
    body = delegation(server_name)

    async def server_well_known(request: MatrixRequest) -> tuple[int, Any]:
        return 200, body

    router.register("GET", PATH, server_well_known)
