"""Server discovery: ``/versions``, ``/.well-known/matrix/client`` and ``/health``.

spec: client-server-api/_index.md#get_matrixclientversions,
#getwell-knownmatrixclient (server discovery)
"""

from __future__ import annotations

from typing import Any

from homeserver.http.request import MatrixRequest
from homeserver.http.server import PlainText, Router

#: The spec versions whose client-server API this server implements.
SUPPORTED_SPEC_VERSIONS = [f"v1.{minor}" for minor in range(1, 13)]


#: Our unstable extensions (namespace ``dev.homeserver``): the WebSocket sync stream
#: (docs/websocket-stream.md), "delivered" receipts (receipts/delivered.py) and the
#: ``dev.homeserver.*`` filters of ``POST /search`` (docs/search.md).
UNSTABLE_FEATURES = {
    "dev.homeserver.stream": True,
    "dev.homeserver.delivered_receipts": True,
    "dev.homeserver.media_info": True,
    "dev.homeserver.search_filters": True,
}


def register(router: Router, *, public_baseurl: str, extra_well_known: dict[str, Any]) -> None:
    async def versions(request: MatrixRequest) -> tuple[int, Any]:
        return 200, {"versions": SUPPORTED_SPEC_VERSIONS, "unstable_features": UNSTABLE_FEATURES}

    well_known = {**extra_well_known, "m.homeserver": {"base_url": public_baseurl}}

    async def client_well_known(request: MatrixRequest) -> tuple[int, Any]:
        return 200, well_known

    router.register("GET", "/_matrix/client/versions", versions)
    router.register("GET", "/.well-known/matrix/client", client_well_known)


def register_health(router: Router) -> None:
    """``/health``: 200 ``OK`` while the process serves requests (for load balancers)."""

    async def health(request: MatrixRequest) -> tuple[int, Any]:
        return 200, PlainText("OK")

    router.register("GET", "/health", health)
