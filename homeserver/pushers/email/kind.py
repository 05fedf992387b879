"""The ``email`` pusher kind: a digest of unread notifications, mailed after a delay.

The pusher engine queues each notifying event for the pusher and calls
:meth:`EmailPusherKind.deliver` with ALL that is pending (``max_pending = None``), so
one digest covers the whole queue however long it is.  Until the oldest has waited
``email.notif_delay_before_mail`` the answer is "ask again then" (the digest
collects whatever else arrives meanwhile).  Once due, notifications the user has
read since (their read receipts, a later message of theirs in the thread: the rule
of ``GET /notifications``) are dropped; if any are left, ONE mail lists them by
room (counting all of them, showing the newest rooms and messages), and everything
pending is done with.  An SMTP failure is a failed delivery
the engine retries with its backoff.

``check`` accepts only an address the user validated (``/account/3pid``), so a
pusher never mails someone who did not ask for it; ``data`` needs no ``url``.

spec: client-server-api/modules/push.md (``kind: email``), data/api/client-server/pusher.yaml
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from homeserver import errors
from homeserver.clock import Clock
from homeserver.config.email import EmailConfig
from homeserver.errors import MatrixError
from homeserver.notifications.finder import NotificationFinder
from homeserver.pushers.email.digest import DigestBuilder, Unread
from homeserver.pushers.email.mailer import Mailer, MailError
from homeserver.pushers.email.unsubscribe import UnsubscribeLinks
from homeserver.pushers.kinds import DeliveryOutcome, PendingNotification, Pusher
from homeserver.storage.events import EventStore
from homeserver.storage.timeline import TimelineStore
from homeserver.threepids.handler import ThreepidHandler, canonical_address

logger = logging.getLogger(__name__)

#: ``app_id`` of email pushers (spec: "If the kind is "email", this is "m.email"").
EMAIL_APP_ID = "m.email"


class EmailPusherKind:
    name = "email"
    #: The whole queue: a digest's due time and counts cover every pending one.
    max_pending: int | None = None

    def __init__(
        self,
        *,
        config: EmailConfig,
        clock: Clock,
        mailer: Mailer,
        threepids: ThreepidHandler,
        finder: NotificationFinder,
        events: EventStore,
        timeline: TimelineStore,
        digests: DigestBuilder,
        unsubscribe: UnsubscribeLinks,
    ) -> None:
        self._config = config
        self._clock = clock
        self._mailer = mailer
        self._threepids = threepids
        self._finder = finder
        self._events = events
        self._timeline = timeline
        self._digests = digests
        self._unsubscribe = unsubscribe

    async def check(self, user_id: str, app_id: str, pushkey: str, data: Mapping[str, Any]) -> None:
        if not self._config.enable_notifs:
            raise errors.invalid_param("Email notifications are not enabled on this server")
        if app_id != EMAIL_APP_ID:
            raise errors.invalid_param(f"Email pushers must have app_id {EMAIL_APP_ID!r}")
        if canonical_address(pushkey) not in await self._threepids.validated_emails(user_id):
            raise MatrixError(
                HTTPStatus.BAD_REQUEST,
                "M_THREEPID_NOT_FOUND",
                "The pushkey is not an email address of this account (see /account/3pid)",
            )

    async def deliver(
        self, pusher: Pusher, pending: Sequence[PendingNotification]
    ) -> DeliveryOutcome:
        newest = max(p.position for p in pending)
        due = min(p.queued_ts for p in pending) + self._config.notif_delay_before_mail_ms
        now = self._clock.time_msec()
        if now < due:
            return DeliveryOutcome(None, retry_in_ms=due - now)
        address = canonical_address(pusher.pushkey)
        if address not in await self._threepids.validated_emails(pusher.user_id):
            return DeliveryOutcome(newest, remove_pusher=True)
        loaded = await self._events.get_events([p.event_id for p in pending])
        redacted = await self._timeline.get_redactions(list(loaded))
        candidates = [
            Unread(p, loaded[p.event_id])
            for p in sorted(pending, key=lambda p: p.position)
            if p.event_id in loaded and p.event_id not in redacted
        ]
        read = await self._finder.read_events(
            pusher.user_id, [(item.event.room_id, item.event) for item in candidates]
        )
        unread = [item for item in candidates if not read.get(item.event.event_id, True)]
        if not unread:
            return DeliveryOutcome(newest)
        message = await self._digests.build(
            user_id=pusher.user_id,
            address=address,
            unread=unread,
            unsubscribe_link=self._unsubscribe.url(pusher.user_id, pusher.app_id, pusher.pushkey),
        )
        try:
            await self._mailer.send(message)
        except MailError as failure:
            logger.warning("notification mail for %s not sent: %s", pusher.user_id, failure)
            return DeliveryOutcome(None, failed=True)
        return DeliveryOutcome(newest)

    async def badge_changed(self, pusher: Pusher, unread: int) -> None:
        """Mail has no badge; what was read is dropped when the digest is due."""
