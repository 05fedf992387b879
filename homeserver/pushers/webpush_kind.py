"""The ``webpush`` pusher (MSC4174): the server is itself the Web Push application
server (RFC 8030), so a web client's service worker is woken while the app is closed
with no push gateway in between.

- ``pushkey`` is the subscription's P-256 public key (``p256dh``, uncompressed, URL-safe
  base64 without padding); ``data.url`` the push resource (the subscription's
  ``endpoint``; ``data.endpoint``, an earlier draft's name, is read too), which must be
  ``https`` (RFC 8030 §8: push services are reached over TLS) unless its host is an
  address in ``ip_range_whitelist`` (a test or private push service); ``data.auth``
  the 16-byte authentication secret.
- Each notification is one POST: the payload encrypted for the subscription with
  ``aes128gcm`` (RFC 8291, RFC 8188; ``pywebpush``), signed with the server's VAPID key
  (RFC 8292, ``py_vapid``), with ``TTL`` (a day: no older notification is worth
  showing) and ``Urgency`` (``high`` for high-priority notifications, else ``normal``).
- The push service answers 201 (delivered); 404 or 410 (the subscription is gone) or
  403 (it belongs to another VAPID key) remove the pusher, as RFC 8030 §8 and MSC4174
  say; 429 and 5xx are retried with backoff; anything else drops that notification.

The payload is a small JSON object the service worker can show without asking the
server: ``event_id``, ``room_id``, ``type``, ``sender``, ``sender_display_name``,
``room_name``, ``prio``, ``counts.unread``, and ``content`` when
``push.include_content`` allows, the event is not encrypted (a ciphertext the worker
cannot decrypt without the client's keys is no use to it) and everything still fits
in :data:`MAX_PAYLOAD` (RFC 8291 leaves 3,993 bytes of plaintext in a 4,096-byte
record); else the worker fetches the event itself.

spec: MSC4174 (proposals/4174-webpush-pushkind.md), RFC 8030, RFC 8291, RFC 8292
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from pywebpush import WebPusher
from unpaddedbase64 import decode_base64

from homeserver import errors
from homeserver.clock import Clock
from homeserver.http.outbound import OutboundError, OutboundHttpClient
from homeserver.push.evaluator import tweaks_of
from homeserver.pushers.badge import BadgeSource
from homeserver.pushers.details import DetailsReader, NotificationDetails
from homeserver.pushers.kinds import DeliveryOutcome, PendingNotification, Pusher
from homeserver.pushers.prio import priority
from homeserver.pushers.urls import checked_url
from homeserver.pushers.vapid import VapidKey

logger = logging.getLogger(__name__)

#: Plaintext bytes a notification may take (RFC 8291 §4 allows 3,993), with room kept.
MAX_PAYLOAD = 3_800
#: Seconds a push service keeps an undelivered message (RFC 8030 §5.2).
TTL_S = 86_400
MAX_RESPONSE_BYTES = 16 * 1024
TIMEOUT_S = 30.0
#: Statuses that mean the subscription is gone (RFC 8030 §8; MSC4174 adds 403).
_GONE = frozenset({403, 404, 410})


def endpoint_of(data: Mapping[str, Any]) -> Any:
    return data.get("url", data.get("endpoint"))


class WebPushKind:
    name = "webpush"
    max_pending: int | None = 20

    def __init__(
        self,
        client: OutboundHttpClient,
        details: DetailsReader,
        badge: BadgeSource,
        vapid: VapidKey,
        clock: Clock,
        *,
        include_content: bool = True,
    ) -> None:
        self._client = client
        self._details = details
        self._badge = badge
        self._vapid = vapid
        self._clock = clock
        self._include_content = include_content

    async def check(self, user_id: str, app_id: str, pushkey: str, data: Mapping[str, Any]) -> None:
        parts = checked_url(
            endpoint_of(data), missing="data.url (the push subscription's endpoint)"
        )
        if parts.scheme != "https" and not self._client.whitelisted(parts.hostname or ""):
            raise errors.invalid_param("'data.url' must be an https URL")
        auth = data.get("auth")
        if auth is None:
            raise errors.missing_param("data.auth (the subscription's authentication secret)")
        try:
            secret = decode_base64(auth) if isinstance(auth, str) else b""
        except (binascii.Error, ValueError):
            secret = b""
        if len(secret) != 16:
            raise errors.invalid_param("'data.auth' must be 16 bytes in URL-safe base64")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), decode_base64(pushkey))
        except (binascii.Error, ValueError):
            raise errors.invalid_param(
                "'pushkey' must be the subscription's P-256 public key (uncompressed, "
                "URL-safe base64)"
            ) from None

    async def deliver(
        self, pusher: Pusher, pending: Sequence[PendingNotification]
    ) -> DeliveryOutcome:
        details = await self._details.read(pending)
        unread = await self._badge(pusher.user_id)
        done: int | None = None
        for notification in pending:
            found = details.get(notification.event_id)
            if found is not None:
                prio = priority(found.event, pusher.user_id, tweaks_of(notification.actions))
                payload = self._payload(found, prio, unread)
                verdict = await self._send(pusher, payload, "high" if prio == "high" else "normal")
                if verdict == "failed":
                    return DeliveryOutcome(delivered_up_to=done, failed=True)
                if verdict == "gone":
                    return DeliveryOutcome(delivered_up_to=done, remove_pusher=True)
            done = notification.position
        return DeliveryOutcome(delivered_up_to=done)

    async def badge_changed(self, pusher: Pusher, unread: int) -> None:
        """Not sent: a Web Push message wakes the device and the worker must show a
        notification for it (browsers require one), so a badge alone is not worth it."""

    def _payload(self, details: NotificationDetails, prio: str, unread: int) -> bytes:
        event = details.event
        body: dict[str, Any] = {
            "event_id": event.event_id,
            "room_id": event.room_id,
            "type": event.type,
            "sender": event.sender,
            "prio": prio,
            "counts": {"unread": unread},
        }
        for key, value in (
            ("sender_display_name", details.sender_display_name),
            ("room_name", details.room_name),
        ):
            if value is not None:
                body[key] = value
        small = _encode(body)
        if self._include_content and event.content and event.type != "m.room.encrypted":
            with_content = _encode({**body, "content": event.content})
            if len(with_content) <= MAX_PAYLOAD:
                return with_content
        if len(small) <= MAX_PAYLOAD:
            return small
        return _encode({key: body[key] for key in ("event_id", "room_id", "prio", "counts")})

    async def _send(self, pusher: Pusher, payload: bytes, urgency: str) -> str:
        """ "ok", "failed" (retry), "gone" (remove the pusher) or "dropped"."""
        endpoint = str(endpoint_of(pusher.data))
        subscription = {
            "endpoint": endpoint,
            "keys": {"p256dh": pusher.pushkey, "auth": str(pusher.data["auth"])},
        }
        encoded = WebPusher(subscription).encode(payload, "aes128gcm")
        headers = {
            "Content-Encoding": "aes128gcm",
            "TTL": str(TTL_S),
            "Urgency": urgency,
            "Authorization": self._vapid.authorization(endpoint, self._clock.time()),
        }
        try:
            response = await self._client.post(
                endpoint,
                encoded["body"],
                content_type="application/octet-stream",
                max_size=MAX_RESPONSE_BYTES,
                timeout=TIMEOUT_S,
                headers=headers,
            )
        except OutboundError as error:
            logger.info("web push to pusher %d failed: %s", pusher.pusher_id, error)
            return "failed"
        if 200 <= response.code < 300:
            return "ok"
        if response.code in _GONE:
            logger.info(
                "web push subscription of pusher %d is gone (%d)", pusher.pusher_id, response.code
            )
            return "gone"
        if response.code == 429 or response.code >= 500:
            return "failed"
        logger.warning(
            "push service refused a message for pusher %d with %d; dropped",
            pusher.pusher_id,
            response.code,
        )
        return "dropped"


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
