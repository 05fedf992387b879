"""``GET /notifications``: the events the requester was notified about, newest first.

spec: client-server-api/modules/push.md, data/api/client-server/notifications.yaml
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import query_int, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, cancel_on_disconnect, client_paths
from homeserver.notifications.listing import DEFAULT_LIMIT, NotificationsHandler


def register(
    router: Router, *, authenticator: RequestAuthenticator, notifications: NotificationsHandler
) -> None:
    @cancel_on_disconnect
    async def get_notifications(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        limit = query_int(request, "limit", DEFAULT_LIMIT)
        assert limit is not None
        if limit < 1:
            raise errors.invalid_param("'limit' must be a positive integer")
        only = query_str(request, "only")
        if only not in (None, "highlight"):
            raise errors.invalid_param("'only' may only be 'highlight'")
        return 200, await notifications.list(
            requester.user_id,
            from_token=query_str(request, "from"),
            limit=limit,
            only_highlight=only == "highlight",
        )

    for path in client_paths("/notifications"):
        router.register("GET", path, get_notifications)
