"""A user's own settings follow them into an upgraded room when they join it.

When a local user joins a room whose ``m.room.create`` names a ``predecessor`` they
were joined to, their room tags (``m.tag``), the ``m.direct`` entries listing the
old room, and their push rules about the old room are copied to the new room.  It
runs on every join (the upgrader's own join as the new room is created included),
not once for everybody at upgrade time as Synapse does, because the spec ties it to
the join and a user who never joins the new room has no use for the copies.

"Were joined to": joined in the old room's state at its tombstone naming this room
(joined when the room was replaced), or, before the tombstone exists, the new room's
creator (the upgrader, joining as the room is created) joined to it now.  A room
whose predecessor's tombstone names no room or another room is no successor.

spec: client-server-api/modules/room_upgrades.md ("When a user joins the new room,
the server should automatically transfer/replicate some of the user's personalized
settings such as notifications, tags, etc.")
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.accountdata.handler import AccountDataHandler
from homeserver.events.event import Event
from homeserver.push.handler import PushRulesHandler
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import EventStore

logger = logging.getLogger(__name__)

DIRECT = "m.direct"
_CREATE = ("m.room.create", "")
_TOMBSTONE = ("m.room.tombstone", "")


class UpgradeCarryOver:
    def __init__(
        self,
        *,
        server_name: str,
        state: RoomStateReader,
        events: EventStore,
        account_data: AccountDataHandler,
        push_rules: PushRulesHandler,
    ) -> None:
        self._server_name = server_name
        self._state = state
        self._events = events
        self._account_data = account_data
        self._push_rules = push_rules

    async def on_state_event(self, event: Event) -> None:
        """For ``EventPipeline.after_state_change``; never raises (the join is stored
        whatever happens here)."""
        try:
            if not await self._is_new_local_join(event):
                return
            old_room_id = await self._predecessor_to_copy_from(event.room_id, event.sender)
            if old_room_id is not None:
                await self.copy_user_settings(event.sender, old_room_id, event.room_id)
        except Exception:
            logger.error(
                "could not carry %s's settings over to %s",
                event.sender,
                event.room_id,
                exc_info=True,
            )

    async def copy_user_settings(self, user_id: str, old_room_id: str, new_room_id: str) -> None:
        """Tags, ``m.direct`` and push rules of ``old_room_id`` given to ``new_room_id``."""
        for tag, content in (await self._account_data.get_tags(user_id, old_room_id)).items():
            await self._account_data.add_tag(user_id, new_room_id, tag, content)

        def add_to_direct(current: dict[str, Any] | None) -> dict[str, Any] | None:
            # As Synapse: the new room joins every list that names the old one.
            if not isinstance(current, dict):
                return None
            updated = dict(current)
            for partner, rooms in current.items():
                if isinstance(rooms, list) and old_room_id in rooms and new_room_id not in rooms:
                    updated[partner] = [*rooms, new_room_id]
            return updated if updated != current else None

        await self._account_data.update_global(user_id, DIRECT, add_to_direct)
        await self._push_rules.copy_room_rules(user_id, old_room_id, new_room_id)

    async def _is_new_local_join(self, event: Event) -> bool:
        if event.type != "m.room.member" or event.membership != "join":
            return False
        if event.state_key != event.sender or not event.sender.endswith(":" + self._server_name):
            return False
        replaced = event.internal.replaces_state
        if replaced is None:
            return True
        previous = (await self._events.get_events([replaced])).get(replaced)
        # A profile change re-sends the join: only a new join copies anything.
        return previous is None or previous.membership != "join"

    async def _predecessor_to_copy_from(self, room_id: str, user_id: str) -> str | None:
        """The predecessor of ``room_id`` if ``user_id`` was joined to it, else None."""
        room = await self._state.room(room_id)
        if room is None:
            return None
        create = (await self._state.current_state(room, [_CREATE])).get(_CREATE)
        predecessor = create.content.get("predecessor") if create is not None else None
        old_room_id = predecessor.get("room_id") if isinstance(predecessor, dict) else None
        if not isinstance(old_room_id, str):
            return None
        old_room = await self._state.room(old_room_id)
        if old_room is None:
            return None
        member = ("m.room.member", user_id)
        tombstone = (await self._state.current_state(old_room, [_TOMBSTONE])).get(_TOMBSTONE)
        if tombstone is not None and tombstone.content.get("replacement_room") != room_id:
            return None  # the old room names another successor: this one is no upgrade
        if tombstone is not None:
            at_tombstone = await self._state.state_after(tombstone)
            member_event_id = at_tombstone.get(member)
            if member_event_id is None:
                return None
            loaded = await self._events.get_events([member_event_id])
            member_event = loaded.get(member_event_id)
            joined = member_event is not None and member_event.membership == "join"
        elif create is None or create.sender != user_id:
            # No tombstone yet: only the upgrader's join as the room is created counts
            # (anyone may put a ``predecessor`` in /createRoom's creation_content).
            return None
        else:
            current = (await self._state.current_state(old_room, [member])).get(member)
            joined = current is not None and current.membership == "join"
        return old_room_id if joined else None
