"""``POST /pushers/set`` and ``GET /pushers``: a user's pushers, and their end.

A pusher belongs to the device whose access token set it: it is deleted with the
device (logout, device deletion, deactivation: ``AccountHandler.on_devices_changed``),
and every pusher of a deactivated account goes (``on_deactivate``).  ``append: false``
(the default) takes the ``(app_id, pushkey)`` away from every other user, as a phone
that changes hands must stop receiving the previous owner's notifications.  Setting a
pusher again binds it to the device setting it now and makes ``now`` its
``pushkey_ts``.  A user has at most :data:`MAX_PUSHERS_PER_USER` pushers (beyond:
400 ``M_LIMIT_EXCEEDED``; the spec sets no number), and ``POST /pushers/set`` is rate
limited per user (``rc_pushers``, in the servlet).

The request's shape is checked by the servlet; the rules that need the kind (its
``data``, its pushkey) by the kind's :meth:`~homeserver.pushers.kinds.PusherKind.check`.

spec: client-server-api/modules/push.md#client-behaviour (data/api/client-server/pusher.yaml)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import attrs

from homeserver import errors
from homeserver.clock import Clock
from homeserver.pushers.kinds import Pusher
from homeserver.pushers.registry import PusherKinds
from homeserver.storage.pushers import NewPusher, PusherStore, TooManyPushers

logger = logging.getLogger(__name__)

#: spec: "Max length, 512 bytes" (pushkey), "Max length, 64 chars" (app_id).
MAX_PUSHKEY_BYTES = 512
MAX_APP_ID_CHARS = 64
#: Pushers per user: a few devices with a few apps each, with room to spare, while
#: one account cannot make each event fan out to thousands of requests.
MAX_PUSHERS_PER_USER = 50

#: The ``activated`` flag MSC4174 adds to ``webpush`` pushers in ``GET /pushers``.
WEBPUSH = "webpush"


@attrs.frozen
class PusherSettings:
    """A checked ``POST /pushers/set`` body whose ``kind`` is not null."""

    kind: str
    app_id: str
    pushkey: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: Mapping[str, Any]
    append: bool = False


class PushersHandler:
    def __init__(self, store: PusherStore, kinds: PusherKinds, clock: Clock) -> None:
        self._store = store
        self._kinds = kinds
        self._clock = clock
        #: Called with each pusher created or updated (the engine's users-with-pushers).
        self.on_set: list[Callable[[Pusher], None]] = []
        #: Called with the pushers deleted, however (the engine drops their timers).
        self.on_removed: list[Callable[[Sequence[Pusher]], None]] = []

    async def get_pushers(self, user_id: str) -> list[dict[str, Any]]:
        """The ``pushers`` of ``GET /pushers``."""
        return [_to_json(pusher) for pusher in await self._store.get_pushers_for_user(user_id)]

    async def set_pusher(
        self, user_id: str, device_id: str | None, settings: PusherSettings
    ) -> None:
        kind = self._kinds.get(settings.kind)
        if kind is None:
            raise errors.invalid_param(
                f"Unknown pusher kind {settings.kind!r}; this server supports "
                f"{', '.join(self._kinds.names()) or 'none'}"
            )
        await kind.check(user_id, settings.app_id, settings.pushkey, settings.data)
        try:
            pusher, removed = await self._store.set_pusher(
                NewPusher(
                    user_id=user_id,
                    kind=settings.kind,
                    app_id=settings.app_id,
                    pushkey=settings.pushkey,
                    app_display_name=settings.app_display_name,
                    device_display_name=settings.device_display_name,
                    profile_tag=settings.profile_tag,
                    lang=settings.lang,
                    data=settings.data,
                    device_id=device_id,
                ),
                now=self._clock.time_msec(),
                remove_other_users=not settings.append,
                max_per_user=MAX_PUSHERS_PER_USER,
            )
        except TooManyPushers as error:
            raise errors.MatrixError(
                HTTPStatus.BAD_REQUEST,
                errors.Codes.LIMIT_EXCEEDED,
                f"A user may have at most {error.limit} pushers; delete one first",
            ) from None
        self._removed(removed)
        for callback in self.on_set:
            callback(pusher)

    async def delete_pusher(self, user_id: str, app_id: str, pushkey: str) -> None:
        """``kind: null``: deleting a pusher that does not exist is not an error."""
        self._removed(await self._store.delete_pusher(user_id, app_id, pushkey))

    async def remove(self, pusher_id: int) -> None:
        """The pusher is dead (its gateway rejected it): the engine asks."""
        self._removed(await self._store.delete_pusher_by_id(pusher_id))

    async def on_devices_changed(self, user_id: str) -> None:
        """A device of the user was deleted (or renamed): its pushers go with it."""
        self._removed(await self._store.delete_pushers_of_deleted_devices(user_id))

    async def on_deactivate(self, user_id: str, erase: bool) -> None:
        self._removed(await self._store.delete_user_pushers(user_id))

    def _removed(self, pushers: Sequence[Pusher]) -> None:
        if not pushers:
            return
        for pusher in pushers:
            logger.info(
                "removed %s pusher %d of %s (%s)",
                pusher.kind,
                pusher.pusher_id,
                pusher.user_id,
                pusher.app_id,
            )
        for callback in self.on_removed:
            callback(pushers)


def _to_json(pusher: Pusher) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pushkey": pusher.pushkey,
        "kind": pusher.kind,
        "app_id": pusher.app_id,
        "app_display_name": pusher.app_display_name,
        "device_display_name": pusher.device_display_name,
        "lang": pusher.lang,
        "data": dict(pusher.data),
    }
    if pusher.profile_tag is not None:
        body["profile_tag"] = pusher.profile_tag
    if pusher.kind == WEBPUSH:
        # No activation step here (docs/push.md): a webpush pusher is active once set.
        body["activated"] = True
    return body
