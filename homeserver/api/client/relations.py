"""Relations and threads: ``/v1/rooms/{roomId}/relations/...`` and ``/threads``.

spec: client-server-api/_index.md#relationships-api, modules/threading.md
(#querying-threads-in-a-room); data/api/client-server/relations.yaml,
threads_list.yaml
"""

from __future__ import annotations

from typing import Any

from twisted.web import server

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import check_room_id, query_bool, query_direction, query_int, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, cancel_on_disconnect, client_paths
from homeserver.ratelimit import RateLimiter
from homeserver.rooms.relations import RelationsHandler, RelationsQuery, ThreadInclude

#: ``limit`` of ``/relations`` and ``/threads`` when the client gives none, and the most
#: either returns whatever the client asks.
DEFAULT_LIMIT = 5
MAX_LIMIT = 100
_MAX_TYPE_BYTES = 255


def register(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    relations: RelationsHandler,
    threads_limiter: RateLimiter,
) -> None:
    @cancel_on_disconnect
    async def get_relations(
        request: MatrixRequest,
        room_id: str,
        event_id: str,
        rel_type: str | None = None,
        event_type: str | None = None,
    ) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        if not event_id.startswith("$"):
            raise errors.invalid_param(f"{event_id!r} is not a valid event ID")
        for name, value in (("relType", rel_type), ("eventType", event_type)):
            if value is not None and len(value.encode("utf-8")) > _MAX_TYPE_BYTES:
                raise errors.invalid_param(f"{name!r} is longer than 255 bytes")
        query = RelationsQuery(
            limit=page_limit(request),
            direction=query_direction(request),
            rel_type=rel_type,
            event_type=event_type,
            from_token=query_str(request, "from"),
            to_token=query_str(request, "to"),
            recurse=query_bool(request, "recurse"),
        )
        return 200, await relations.relations(requester, room_id, event_id, query)

    @cancel_on_disconnect
    async def threads(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        threads_limiter.ratelimit(requester.user_id)
        check_room_id(room_id)
        include: ThreadInclude
        match query_str(request, "include", "all"):
            case "all":
                include = "all"
            case "participated":
                include = "participated"
            case _:
                raise errors.invalid_param("'include' must be 'all' or 'participated'")
        return 200, await relations.threads(
            requester,
            room_id,
            include=include,
            from_token=query_str(request, "from"),
            limit=page_limit(request),
        )

    base = "/rooms/{room_id}/relations/{event_id}"
    for path in (base, base + "/{rel_type}", base + "/{rel_type}/{event_type}"):
        for full_path in client_paths(path, ("v1",)):
            router.register("GET", full_path, get_relations)
    for full_path in client_paths("/rooms/{room_id}/threads", ("v1",)):
        router.register("GET", full_path, threads)


def page_limit(request: server.Request) -> int:
    limit = query_int(request, "limit", DEFAULT_LIMIT)
    assert limit is not None
    if limit < 1:
        raise errors.invalid_param("'limit' must be at least 1")
    return min(limit, MAX_LIMIT)
