"""``GET /_matrix/federation/v1/version``: this server's implementation name and
version (unauthenticated).

spec: server-server-api.md#get_matrixfederationv1version
"""

from __future__ import annotations

from typing import Any

import homeserver
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router

#: What we call ourselves to other servers.
SERVER_NAME = "homeserver"


def register(router: Router) -> None:
    body = {"server": {"name": SERVER_NAME, "version": homeserver.__version__}}

    async def version(request: MatrixRequest) -> tuple[int, Any]:
        return 200, body

    router.register("GET", "/_matrix/federation/v1/version", version)
