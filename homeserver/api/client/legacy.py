"""The legacy endpoints still in the spec, used by bots, scripts and old clients:
``GET /events``, ``GET /events/{eventId}``, ``GET /initialSync`` and
``GET /rooms/{roomId}/initialSync``.

spec: client-server-api/_index.md#get_matrixclientv3events, #get_matrixclientv3eventseventid,
#get_matrixclientv3initialsync, #get_matrixclientv3roomsroomidinitialsync, #peeking-events
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import check_room_id, query_bool, query_int, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, cancel_on_disconnect, client_paths
from homeserver.ratelimit import RateLimiter
from homeserver.streams.token import StreamToken
from homeserver.sync.legacy import LegacySyncHandler


def _limit(request: MatrixRequest) -> int | None:
    limit = query_int(request, "limit")
    if limit is not None and limit < 0:
        raise errors.invalid_param("'limit' must not be negative")
    return limit


def register(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    legacy: LegacySyncHandler,
    limiter: RateLimiter,
) -> None:
    @cancel_on_disconnect
    async def get_events(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        limiter.ratelimit(requester.user_id)
        room_id = query_str(request, "room_id")
        if room_id is not None:
            check_room_id(room_id)
        elif requester.is_guest:
            # spec: guests may use /events "as used for room previews"; Synapse
            # requires the room for them too.
            raise errors.missing_param("room_id")
        from_param = query_str(request, "from")
        from_token = StreamToken.parse(from_param, param="from") if from_param else None
        timeout = query_int(request, "timeout", 0)
        assert timeout is not None
        if timeout < 0:
            raise errors.invalid_param("'timeout' must not be negative")
        body = await legacy.event_stream(
            requester, from_token=from_token, timeout_ms=timeout, room_id=room_id
        )
        return 200, body

    @cancel_on_disconnect
    async def get_event(request: MatrixRequest, event_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, await legacy.get_event(requester, event_id)

    @cancel_on_disconnect
    async def get_initial_sync(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        limiter.ratelimit(requester.user_id)
        archived = query_bool(request, "archived") or False
        body = await legacy.initial_sync(requester, limit=_limit(request), archived=archived)
        return 200, body

    @cancel_on_disconnect
    async def get_room_initial_sync(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        check_room_id(room_id)
        body = await legacy.room_initial_sync(requester, room_id, limit=_limit(request))
        return 200, body

    for path in client_paths("/events"):
        router.register("GET", path, get_events)
    for path in client_paths("/events/{event_id}"):
        router.register("GET", path, get_event)
    for path in client_paths("/initialSync"):
        router.register("GET", path, get_initial_sync)
    for path in client_paths("/rooms/{room_id}/initialSync"):
        router.register("GET", path, get_room_initial_sync)
