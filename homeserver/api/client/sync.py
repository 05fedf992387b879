"""``GET /sync``.

spec: client-server-api/_index.md#get_matrixclientv3sync
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.filtering.handler import FilterHandler
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import query_bool, query_int, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, cancel_on_disconnect, client_paths
from homeserver.presence.handler import PresenceHandler
from homeserver.presence.record import PRESENCE_STATES
from homeserver.ratelimit import RateLimiter
from homeserver.receipts.delivered import DeliveryRecorder
from homeserver.streams.token import StreamToken
from homeserver.sync.handler import SyncHandler, SyncRequest


def register(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    sync: SyncHandler,
    filters: FilterHandler,
    limiter: RateLimiter,
    presence: PresenceHandler,
    deliveries: DeliveryRecorder,
) -> None:
    """``set_presence``: the request keeps the user connected while it runs
    (``presence/state.py``); once the response has been handed to the connection,
    the events it carried count as delivered (``receipts/delivered.py``)."""

    @cancel_on_disconnect
    async def get_sync(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        limiter.ratelimit(requester.user_id)
        since_param = query_str(request, "since")
        since = StreamToken.parse(since_param) if since_param else None
        timeout = query_int(request, "timeout", 0)
        assert timeout is not None
        if timeout < 0:
            raise errors.invalid_param("'timeout' must not be negative")
        full_state = query_bool(request, "full_state") or False
        set_presence = query_str(request, "set_presence", "online")
        if set_presence not in PRESENCE_STATES:
            raise errors.invalid_param("'set_presence' must be online, offline or unavailable")
        sync_filter = await filters.resolve(requester.user_id, query_str(request, "filter"))
        connection = presence.connect(requester.user_id, set_presence)
        try:
            result = await sync.sync_result(
                requester,
                SyncRequest(
                    since=since,
                    timeout_ms=timeout,
                    full_state=full_state,
                    filter=sync_filter,
                ),
            )
        finally:
            connection.close()
        if result.deliveries:
            # Fires once the response is written out, never if the client left first.
            request.notifyFinish().addCallbacks(
                lambda _: deliveries.delivered(requester.user_id, result.deliveries),
                lambda _: None,
            )
        return 200, result.body

    for path in client_paths("/sync"):
        router.register("GET", path, get_sync)
