"""``GET /notifications`` as JSON: a page of :class:`NotificationFinder` results with
its events in the client format.

The pagination token is opaque to clients: the stream position the next page starts
strictly before, in decimal.

spec: client-server-api/modules/push.md, data/api/client-server/notifications.yaml
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.accountdata.handler import AccountDataHandler
from homeserver.notifications.finder import NotificationFinder
from homeserver.rooms.serialize import EventSerializer, Viewer

#: Synapse's default page size; larger requests are cut to :data:`MAX_LIMIT`.
DEFAULT_LIMIT = 50
MAX_LIMIT = 100


class NotificationsHandler:
    def __init__(
        self,
        finder: NotificationFinder,
        serializer: EventSerializer,
        account_data: AccountDataHandler,
    ) -> None:
        self._finder = finder
        self._serializer = serializer
        self._account_data = account_data

    async def list(
        self, user_id: str, *, from_token: str | None, limit: int, only_highlight: bool
    ) -> dict[str, Any]:
        page = await self._finder.page(
            user_id,
            before=parse_token(from_token),
            limit=max(1, min(limit, MAX_LIMIT)),
            only_highlight=only_highlight,
        )
        viewer = Viewer(user_id, ignored_users=await self._account_data.ignored_users(user_id))
        events = await self._serializer.serialize(
            [n.event for n in page.notifications], viewer, include_room_id=False
        )
        body: dict[str, Any] = {
            "notifications": [
                {
                    "actions": list(notification.actions.raw),
                    "event": event,
                    "read": notification.read,
                    "room_id": notification.room_id,
                    "ts": notification.event.origin_server_ts,
                }
                for notification, event in zip(page.notifications, events, strict=True)
            ]
        }
        if page.next_before is not None:
            body["next_token"] = str(page.next_before)
        return body


def parse_token(token: str | None) -> int | None:
    if token is None:
        return None
    if not token.isascii() or not token.isdigit() or len(token) > 18:
        raise errors.invalid_param("'from' is not a token this server gave")
    return int(token)
