"""The space hierarchy: ``GET /v1/rooms/{roomId}/hierarchy``.

spec: client-server-api/modules/spaces.md#discovering-rooms-within-spaces,
data/api/client-server/space_hierarchy.yaml
"""

from __future__ import annotations

from typing import Any

from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import check_room_id, query_bool, query_int, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, cancel_on_disconnect, client_paths
from homeserver.ratelimit import RateLimiter
from homeserver.rooms.hierarchy import SpaceHierarchyHandler


def register(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    hierarchy: SpaceHierarchyHandler,
    limiter: RateLimiter,
) -> None:
    @cancel_on_disconnect
    async def get_hierarchy(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        limiter.ratelimit(requester.user_id)
        check_room_id(room_id)
        return 200, await hierarchy.hierarchy(
            requester,
            room_id,
            suggested_only=query_bool(request, "suggested_only") or False,
            max_depth=query_int(request, "max_depth"),
            limit=query_int(request, "limit"),
            from_token=query_str(request, "from"),
        )

    for full_path in client_paths("/rooms/{room_id}/hierarchy", ("v1",)):
        router.register("GET", full_path, get_hierarchy)
