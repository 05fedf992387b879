"""What counts as a local user being active, wired to the handlers that see it.

spec: client-server-api/modules/presence.md ("last_active_ago")
"""

from __future__ import annotations

from homeserver.events.event import Event
from homeserver.presence.handler import PresenceHandler
from homeserver.receipts.handler import ReceiptsHandler
from homeserver.rooms.assembly import RoomServices
from homeserver.typing.handler import TypingHandler


def track_presence_activity(
    server_name: str,
    presence: PresenceHandler,
    rooms: RoomServices,
    typing: TypingHandler,
    receipts: ReceiptsHandler,
) -> None:
    """What local users do keeps them online; joining a room exchanges presence with
    its members (presence/handler.py)."""

    def is_local(user_id: str) -> bool:
        return user_id.partition(":")[2] == server_name

    typing.on_activity.append(presence.record_activity)
    receipts.on_activity.append(presence.record_activity)

    def on_new_event(event: Event, _position: int) -> None:
        # Membership events are also made by the server on a user's behalf (profile
        # changes, deactivation, guest eviction): not a sign the user is there.
        if event.type != "m.room.member" and is_local(event.sender):
            presence.record_activity(event.sender)

    async def on_state_change(event: Event) -> None:
        if (
            event.type == "m.room.member"
            and event.membership == "join"
            and event.state_key is not None
            and is_local(event.state_key)
        ):
            presence.joined_room(event.state_key, event.room_id)

    rooms.pipeline.on_new_event.append(on_new_event)
    rooms.pipeline.after_state_change.append(on_state_change)
