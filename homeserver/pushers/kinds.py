"""What every kind of pusher (``http``, ``webpush``, ``email``) provides to the
pusher engine, and what the engine hands it.

The engine (``pushers/engine.py``) owns *when*: it reads the events stream from its
stored position, evaluates the push rules of users with pushers, and queues each
notifying event for each of their pushers in the database (``PendingNotification``),
so nothing is lost across a restart.  A kind owns *how*: :meth:`PusherKind.deliver`
gets a pusher's pending notifications, oldest first, and answers what became of them
(:class:`DeliveryOutcome`): delivered up to a position, try again later (a gateway
outage, or an email digest still waiting for its delay), or the pusher is dead.

spec: client-server-api/modules/push.md#pushers, push-gateway-api.md
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs


@attrs.frozen
class Pusher:
    """One row of ``POST /pushers/set``.  ``(app_id, pushkey, user_id)`` is unique."""

    pusher_id: int
    user_id: str
    kind: str
    app_id: str
    pushkey: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    #: The pusher's ``data`` as the client gave it (``url``, ``format``, ...).
    data: Mapping[str, Any]
    #: The device whose access token set it; the pusher goes with the device.
    device_id: str | None
    created_ts: int


@attrs.frozen
class PendingNotification:
    """A notifying event waiting to be delivered to one pusher."""

    #: The event's position in the events stream (the queue's order).
    position: int
    event_id: str
    room_id: str
    #: The push rule's actions for this user, as JSON (``notify`` and its tweaks).
    actions: Sequence[Any]
    #: When the engine queued it (ms since the epoch).
    queued_ts: int


@attrs.frozen
class DeliveryOutcome:
    #: Every pending notification at or below this position is done with (delivered,
    #: or deliberately dropped) and leaves the queue.  None: nothing is done.
    delivered_up_to: int | None
    #: Ask again after this many milliseconds (backoff after a failure, or the time
    #: left before an email digest is due).  None: only when something new is queued.
    retry_in_ms: int | None = None
    #: The pusher is dead (its gateway rejected the pushkey, or the subscription is
    #: gone): the engine deletes it and its queue.
    remove_pusher: bool = False
    #: The delivery failed (a gateway outage, a timeout): the engine retries with its
    #: own backoff (exponential, ~1 s to ~1 h, with jitter; ``retry_in_ms``, if given,
    #: is a minimum) and drops a notification that has been failing for a day.
    failed: bool = False


class PusherKind(Protocol):
    #: The ``kind`` of ``POST /pushers/set`` this handles.
    name: str
    #: How many pending notifications :meth:`deliver` is given at most, oldest first.
    #: None: all of the pusher's pending notifications (an email digest summarises
    #: the whole queue).  HTTP and Web Push take 20 at a time.
    max_pending: int | None

    async def check(self, user_id: str, app_id: str, pushkey: str, data: Mapping[str, Any]) -> None:
        """Refuse a pusher this kind cannot serve, with a Matrix error (400
        ``M_INVALID_PARAM``, ``M_MISSING_PARAM``, ``M_THREEPID_NOT_FOUND``...)."""
        ...

    async def deliver(
        self, pusher: Pusher, pending: Sequence[PendingNotification]
    ) -> DeliveryOutcome:
        """Deliver what is pending (at least one, oldest first).  Never raises for a
        delivery failure: it answers with a retry or a removal instead."""
        ...

    async def badge_changed(self, pusher: Pusher, unread: int) -> None:
        """The user's unread count changed without a new notification (they read
        something): update the app badge.  Called only for kinds registered with
        ``badge_updates=True`` (``PusherKinds.register``)."""
        ...
