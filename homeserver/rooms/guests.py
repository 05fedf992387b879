"""Guests leave a room when it stops admitting them.

spec: client-server-api/modules/guest_access.md#server-behaviour — "If the
``m.room.guest_access`` event is changed to stop this from being the case, the server
MUST set those users' ``m.room.member`` state to ``leave``."
"""

from __future__ import annotations

import logging

from homeserver.errors import MatrixError
from homeserver.events.event import Event
from homeserver.identifiers import UserID
from homeserver.rooms.membership import MembershipHandler
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.users import UserStore

logger = logging.getLogger(__name__)

GUEST_ACCESS_TYPE = "m.room.guest_access"


class GuestEviction:
    """Registered as ``EventPipeline.after_state_change``: on an ``m.room.guest_access``
    that is not ``can_join``, every local guest joined to (or invited into) the room
    leaves it."""

    def __init__(
        self,
        *,
        server_name: str,
        users: UserStore,
        state: RoomStateReader,
        membership: MembershipHandler,
    ) -> None:
        self._server_name = server_name
        self._users = users
        self._state = state
        self._membership = membership

    async def on_state_change(self, event: Event) -> None:
        if event.type != GUEST_ACCESS_TYPE or event.state_key != "":
            return
        if event.content.get("guest_access") == "can_join":
            return
        room = await self._state.room(event.room_id)
        if room is None:
            return
        current = await self._state.current_state(room)
        latest = current.get((GUEST_ACCESS_TYPE, ""))
        if latest is None or latest.event_id != event.event_id:
            # Already superseded by a later change; that one decides.
            return
        members = [
            user_id
            for (event_type, user_id), member in current.items()
            if event_type == "m.room.member"
            and member.membership in ("join", "invite")
            and _is_local(user_id, self._server_name)
        ]
        for user_id in sorted(await self._users.guests_among(members)):
            # The guest leaves rather than being kicked (as Synapse does): no power
            # level is needed, and the decision stays with the guest's own server.
            try:
                await self._membership.send_member_event(
                    event.room_id, user_id, user_id, {"membership": "leave"}
                )
            except MatrixError as refused:
                logger.warning(
                    "could not remove guest %s from %s: %s", user_id, event.room_id, refused
                )


def _is_local(user_id: str, server_name: str) -> bool:
    try:
        return UserID.parse(user_id).domain == server_name
    except ValueError:
        return False
