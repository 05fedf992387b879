"""Sending messages, state and redactions on behalf of local users.

``/send`` is idempotent per (user, device, transaction ID): a retried request gets
the first event's ID back, including while the first is still being sent.  State
that would not change (same content from the same sender) is not sent again.
Membership changes sent as state go through the membership handler so they get
the same checks as the dedicated endpoints.

spec: client-server-api/_index.md#put_matrixclientv3roomsroomidsendeventtypetxnid,
#put_matrixclientv3roomsroomidstateeventtypestatekey, #redactions,
#transaction-identifiers
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.events.auth import AuthError, PowerLevels, redaction_applies
from homeserver.events.errors import EventTooLargeError, InvalidEventError
from homeserver.events.event import Event, InternalMetadata, StateMap
from homeserver.events.room_versions import get_room_version
from homeserver.identifiers import is_valid_room_alias
from homeserver.ratelimit import RateLimiter
from homeserver.rooms.builder import EventDraft
from homeserver.rooms.membership import MembershipAction, MembershipHandler
from homeserver.rooms.pipeline import EventPipeline, SentEvent, UnknownRoomError
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import EventStore
from homeserver.util.linearizer import Linearizer

logger = logging.getLogger(__name__)

#: Checks the aliases of an ``m.room.canonical_alias`` event: alias -> room ID or None.
AliasResolver = Callable[[str], Awaitable[str | None]]

_MEMBERSHIP_ACTIONS: dict[str, MembershipAction] = {
    "join": "join",
    "invite": "invite",
    "ban": "ban",
    "knock": "knock",
}


class MessageHandler:
    def __init__(
        self,
        *,
        pipeline: EventPipeline,
        state: RoomStateReader,
        events: EventStore,
        membership: MembershipHandler,
        message_limiter: RateLimiter,
        resolve_local_alias: AliasResolver,
    ) -> None:
        """``resolve_local_alias``: checks the aliases of ``m.room.canonical_alias``."""
        self._pipeline = pipeline
        self._state = state
        self._events = events
        self._membership = membership
        self._limiter = message_limiter
        self._transactions = Linearizer()
        self._resolve_local_alias = resolve_local_alias

    async def send_message(
        self,
        requester: Requester,
        room_id: str,
        event_type: str,
        content: dict[str, Any],
        txn_id: str,
    ) -> str:
        """Send a message event; the same transaction always yields the same event ID."""
        draft = EventDraft(room_id, event_type, requester.user_id, content)

        async def send() -> str:
            return (await self._send(requester, draft, txn_id)).event.event_id

        return await self._once_per_transaction(requester, room_id, event_type, txn_id, send)

    async def send_state(
        self,
        requester: Requester,
        room_id: str,
        event_type: str,
        state_key: str,
        content: dict[str, Any],
    ) -> str:
        if event_type == "m.room.member":
            return await self._send_membership_as_state(requester, room_id, state_key, content)
        if event_type == "m.room.canonical_alias":
            await self._check_canonical_alias(room_id, content)
        room = await self._state.room_or_404(room_id)
        current = (await self._state.current_state(room, [(event_type, state_key)])).get(
            (event_type, state_key)
        )
        if (
            current is not None
            and current.sender == requester.user_id
            and (current.content == content)
        ):
            return current.event_id
        draft = EventDraft(room_id, event_type, requester.user_id, content, state_key=state_key)
        return (await self._send(requester, draft, None)).event.event_id

    async def redact(
        self,
        requester: Requester,
        room_id: str,
        event_id: str,
        reason: str | None,
        txn_id: str,
    ) -> str:
        """spec: client-server-api/_index.md#put_matrixclientv3roomsroomidredacteventidtxnid"""
        return await self._once_per_transaction(
            requester,
            room_id,
            "m.room.redaction",
            txn_id,
            lambda: self._redact(requester, room_id, event_id, reason, txn_id),
        )

    async def _redact(
        self,
        requester: Requester,
        room_id: str,
        event_id: str,
        reason: str | None,
        txn_id: str,
    ) -> str:
        room = await self._state.room_or_404(room_id)
        target = (await self._events.get_events([event_id])).get(event_id)
        if target is not None and target.room_id != room_id:
            # The spec names no error for this; Synapse refuses with 400 ("Cannot
            # redact event from a different room"), which conformance suites expect.
            raise errors.MatrixError(
                400, errors.Codes.UNKNOWN, "Cannot redact an event from a different room"
            )
        if target is None or target.internal.outlier:
            raise errors.not_found("Event not found")
        room_version = get_room_version(room.room_version)
        content: dict[str, Any] = {}
        if reason is not None:
            content["reason"] = reason
        if room_version.redacts_in_content:
            content["redacts"] = event_id
        draft = EventDraft(
            room_id, "m.room.redaction", requester.user_id, content, redacts=event_id
        )
        sent = await self._send(requester, draft, txn_id, check_redaction=True)
        return sent.event.event_id

    async def _send(
        self,
        requester: Requester,
        draft: EventDraft,
        txn_id: str | None,
        *,
        check_redaction: bool = False,
    ) -> SentEvent:
        if not requester.is_admin:
            self._limiter.ratelimit(requester.user_id)
        internal = InternalMetadata(txn_id=txn_id, device_id=requester.device_id)
        try:
            if check_redaction:
                return await self._pipeline.send(
                    draft, internal=internal, before_persist=self._redaction_check
                )
            return await self._pipeline.send(draft, internal=internal)
        except AuthError as refused:
            raise errors.forbidden(f"You cannot send this here: {refused.reason}") from None
        except EventTooLargeError as invalid:
            raise errors.MatrixError(413, errors.Codes.TOO_LARGE, invalid.reason) from None
        except InvalidEventError as invalid:
            raise errors.bad_json(f"Invalid event: {invalid.reason}") from None
        except UnknownRoomError:
            raise errors.not_found("Unknown room") from None

    async def _redaction_check(self, event: Event, state: StateMap[Event]) -> None:
        """Local users may redact their own events, or others' with the redact level.

        The auth rules only judge servers (any event from the same server may be
        redacted); which of our users may redact what is ours to enforce.
        spec: client-server-api/_index.md#redactions ("server behaviour")
        """
        target_id = event.redacts
        if target_id is None:
            return
        target = (await self._events.get_events([target_id])).get(target_id)
        if target is None or target.sender == event.sender:
            return
        levels = PowerLevels.from_state(event.room_version, state)
        if levels.user_level(event.sender) < levels.named_level("redact"):
            raise AuthError("you may only redact your own events without the redact level")
        if not redaction_applies(event.room_version, event, target, state):
            raise AuthError("this redaction would not apply")

    async def _once_per_transaction(
        self,
        requester: Requester,
        room_id: str,
        event_type: str,
        txn_id: str,
        send: Callable[[], Awaitable[str]],
    ) -> str:
        # A retry arriving while the first attempt is still running waits for it and
        # then finds its event, instead of sending a second one.
        key = (requester.user_id, requester.device_id, room_id, event_type, txn_id)
        async with self._transactions.queue(key):
            room = await self._state.room_or_404(room_id)
            existing = await self._events.get_event_id_for_transaction(
                requester.user_id,
                requester.device_id,
                txn_id,
                room_nid=room.room_nid,
                event_type=event_type,
            )
            if existing is not None:
                return existing
            return await send()

    async def _send_membership_as_state(
        self, requester: Requester, room_id: str, target: str, content: dict[str, Any]
    ) -> str:
        membership = content.get("membership")
        if not isinstance(membership, str):
            raise errors.bad_json("'membership' must be a string")
        if membership == "leave":
            action: MembershipAction = "leave" if target == requester.user_id else "kick"
        elif membership in _MEMBERSHIP_ACTIONS:
            action = _MEMBERSHIP_ACTIONS[membership]
        else:
            raise errors.bad_json(f"Unknown membership {membership!r}")
        reason = content.get("reason")
        extra = {k: v for k, v in content.items() if k not in ("membership", "reason")}
        sent = await self._membership.update_membership(
            requester,
            room_id,
            target,
            action,
            reason=reason if isinstance(reason, str) else None,
            extra_content=extra,
        )
        return sent.event.event_id

    async def _check_canonical_alias(self, room_id: str, content: dict[str, Any]) -> None:
        """The aliases an ``m.room.canonical_alias`` event adds must be well formed
        (400 ``M_INVALID_PARAM``) and point to this room (400 ``M_BAD_ALIAS``).

        Only aliases not already in the current event are checked, as Synapse does, so
        a room whose alias was deleted elsewhere can still edit the event.
        spec: client-server-api/_index.md#put_matrixclientv3roomsroomidstateeventtypestatekey
        (400), #mroomcanonical_alias
        """
        room = await self._state.room_or_404(room_id)
        current = (await self._state.current_state(room, [("m.room.canonical_alias", "")])).get(
            ("m.room.canonical_alias", "")
        )
        old_alias = current.content.get("alias") if current is not None else None
        old_alt = current.content.get("alt_aliases") if current is not None else None
        old_aliases = {old_alias, *(old_alt if isinstance(old_alt, list) else [])}
        added: list[Any] = []
        alias = content.get("alias")
        if alias is not None:
            if not isinstance(alias, str):
                raise errors.invalid_param("'alias' must be a string")
            added.append(alias)
        alt = content.get("alt_aliases", [])
        if not isinstance(alt, list):
            raise errors.invalid_param("'alt_aliases' must be a list")
        added.extend(alt)
        for candidate in added:
            if not isinstance(candidate, str):
                raise errors.invalid_param("Each alias must be a string")
            if candidate in old_aliases:
                continue
            if not is_valid_room_alias(candidate):
                raise errors.invalid_param(f"{candidate!r} is not a valid room alias")
            if await self._resolve_local_alias(candidate) != room_id:
                raise errors.MatrixError(
                    400, errors.Codes.BAD_ALIAS, f"{candidate} does not point to this room"
                )

    async def drop_alias_from_canonical(self, user_id: str, room_id: str, alias: str) -> None:
        """After ``alias`` was deleted: send a new ``m.room.canonical_alias`` without it
        (no ``alias`` if it was the main one, ``alt_aliases`` less it), on behalf of the
        user who deleted it.

        The spec does not ask for this; Synapse does it (and, as here, logs and gives
        up when the deleter may not send the event).
        """
        room = await self._state.room(room_id)
        if room is None:
            return
        current = (await self._state.current_state(room, [("m.room.canonical_alias", "")])).get(
            ("m.room.canonical_alias", "")
        )
        if current is None:
            return
        content = dict(current.content)
        if content.get("alias") == alias:
            del content["alias"]
        alt = content.get("alt_aliases")
        if isinstance(alt, list) and alias in alt:
            remaining = [other for other in alt if other != alias]
            if remaining:
                content["alt_aliases"] = remaining
            else:
                del content["alt_aliases"]
        if content == current.content:
            return
        draft = EventDraft(room_id, "m.room.canonical_alias", user_id, content, state_key="")
        try:
            await self._pipeline.send(draft)
        except (AuthError, InvalidEventError, UnknownRoomError) as refused:
            logger.info("could not drop deleted alias %s from %s: %s", alias, room_id, refused)
