"""The ``http`` pusher: ``POST /_matrix/push/v1/notify`` to the push gateway the client
named (``data.url``), which relays to APNs, FCM and the like.

One request per notification, oldest first.  The gateway's answer decides:
- 2xx: delivered; if ``rejected`` lists this pushkey the pusher is removed (spec:
  "Homeservers must cease sending notification requests for these pushkeys and remove
  the associated pushers");
- 429, 5xx, a connection failure or a timeout: the delivery failed and is retried with
  backoff (the engine's);
- any other status (a 4xx, a redirect, which is never followed): that notification is
  dropped with a log line and the next one goes.  A deviation: push-gateway-api.md says
  the homeserver "SHOULD retry" on any HTTP error, but a gateway that refuses a
  request with 400 will refuse it again, and retrying it would hold up every later
  notification of the pusher behind it.

The payload follows push-gateway-api.md: every event field for the default format,
only ``event_id``, ``room_id``, ``counts``, ``prio`` and ``devices`` for
``format: event_id_only``.  ``devices[].data`` is the pusher's ``data`` minus ``url``
(pusher.yaml: "forward the entire content including format and any custom keys but
excluding url").  ``counts.unread`` is always sent, 0 included, although the spec says
zero counts "should be omitted": a gateway clears an app's badge only when told 0.

spec: push-gateway-api.md#post_matrixpushv1notify, client-server-api/modules/push.md
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from homeserver import errors
from homeserver.http.outbound import OutboundError, OutboundHttpClient
from homeserver.push.evaluator import tweaks_of
from homeserver.pushers.badge import BadgeSource
from homeserver.pushers.details import DetailsReader, NotificationDetails
from homeserver.pushers.kinds import DeliveryOutcome, PendingNotification, Pusher
from homeserver.pushers.prio import priority
from homeserver.pushers.urls import checked_url

logger = logging.getLogger(__name__)

NOTIFY_PATH = "/_matrix/push/v1/notify"
EVENT_ID_ONLY = "event_id_only"
#: A gateway's answer is a short JSON object.
MAX_RESPONSE_BYTES = 64 * 1024
TIMEOUT_S = 30.0


class HttpPusherKind:
    name = "http"
    max_pending: int | None = 20

    def __init__(
        self,
        client: OutboundHttpClient,
        details: DetailsReader,
        badge: BadgeSource,
        *,
        include_content: bool = True,
    ) -> None:
        self._client = client
        self._details = details
        self._badge = badge
        self._include_content = include_content

    async def check(self, user_id: str, app_id: str, pushkey: str, data: Mapping[str, Any]) -> None:
        """spec (pusher.yaml): ``data.url`` "MUST be an HTTPS URL with a path of
        /_matrix/push/v1/notify".  Plain http is accepted too, as Synapse does, for
        gateways on a private network; the address policy decides what is reachable."""
        parts = checked_url(data.get("url"), missing="data.url (required for http pushers)")
        if parts.path != NOTIFY_PATH:
            raise errors.invalid_param(f"'data.url' must have the path {NOTIFY_PATH}")
        fmt = data.get("format")
        if fmt is not None and not isinstance(fmt, str):
            raise errors.invalid_param("'data.format' must be a string")

    async def deliver(
        self, pusher: Pusher, pending: Sequence[PendingNotification]
    ) -> DeliveryOutcome:
        id_only = pusher.data.get("format") == EVENT_ID_ONLY
        details = await self._details.read(pending, with_names=not id_only)
        unread = await self._badge(pusher.user_id)
        done: int | None = None
        for notification in pending:
            found = details.get(notification.event_id)
            if found is None:
                done = notification.position  # gone (purged): nothing to say
                continue
            body = self._payload(pusher, notification, found, unread, id_only)
            verdict = await self._post(pusher, body, notification.event_id)
            if verdict == "failed":
                return DeliveryOutcome(delivered_up_to=done, failed=True)
            if verdict == "rejected":
                return DeliveryOutcome(delivered_up_to=done, remove_pusher=True)
            done = notification.position
        return DeliveryOutcome(delivered_up_to=done)

    async def badge_changed(self, pusher: Pusher, unread: int) -> None:
        """A counts-only notification (no ``event_id``), as Synapse sends."""
        body = {
            "notification": {
                "prio": "low",
                "counts": {"unread": unread},
                "devices": [_device(pusher, {})],
            }
        }
        await self._post(pusher, body, None)

    def _payload(
        self,
        pusher: Pusher,
        notification: PendingNotification,
        details: NotificationDetails,
        unread: int,
        id_only: bool,
    ) -> dict[str, Any]:
        event = details.event
        tweaks = tweaks_of(notification.actions)
        body: dict[str, Any] = {
            "event_id": event.event_id,
            "room_id": event.room_id,
            "prio": priority(event, pusher.user_id, tweaks),
            "counts": {"unread": unread},
            "devices": [_device(pusher, tweaks)],
        }
        if id_only:
            return {"notification": body}
        body["type"] = event.type
        body["sender"] = event.sender
        if details.sender_display_name is not None:
            body["sender_display_name"] = details.sender_display_name
        if details.room_name is not None:
            body["room_name"] = details.room_name
        if details.room_alias is not None:
            body["room_alias"] = details.room_alias
        if event.type == "m.room.member":
            body["user_is_target"] = event.state_key == pusher.user_id
        if self._include_content and event.content:
            body["content"] = event.content
        return {"notification": body}

    async def _post(self, pusher: Pusher, body: dict[str, Any], event_id: str | None) -> str:
        """ "ok", "failed" (retry), "rejected" (the pushkey is dead) or "dropped"."""
        url = str(pusher.data["url"])
        try:
            response = await self._client.post_json(
                url, body, max_size=MAX_RESPONSE_BYTES, timeout=TIMEOUT_S
            )
        except OutboundError as error:
            logger.info("push to %s for pusher %d failed: %s", url, pusher.pusher_id, error)
            return "failed"
        if response.code == 429 or response.code >= 500:
            logger.info("push gateway %s answered %d", url, response.code)
            return "failed"
        if not 200 <= response.code < 300:
            logger.warning(
                "push gateway %s refused %s for pusher %d with %d; dropped",
                url,
                event_id or "a badge update",
                pusher.pusher_id,
                response.code,
            )
            return "dropped"
        try:
            rejected = json.loads(response.body).get("rejected", [])
        except (ValueError, AttributeError):
            rejected = []
        if isinstance(rejected, list) and pusher.pushkey in rejected:
            logger.info("push gateway %s rejected pusher %d's pushkey", url, pusher.pusher_id)
            return "rejected"
        return "ok"


def _device(pusher: Pusher, tweaks: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "app_id": pusher.app_id,
        "pushkey": pusher.pushkey,
        "pushkey_ts": pusher.created_ts // 1000,
        "data": {key: value for key, value in pusher.data.items() if key != "url"},
        "tweaks": dict(tweaks),
    }
