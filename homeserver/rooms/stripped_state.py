"""The state that lets someone not in a room recognise it: what invitees and knockers
are shown, and what an invite or knock carries to another server.

spec: client-server-api/_index.md#stripped-state,
server-server-api.md#inviting-to-a-room (``invite_room_state``: full PDUs since v1.16)
"""

from __future__ import annotations

from homeserver.events.event import Event, StateKey
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import RoomRecord

#: The state keys the spec recommends (the create event is required over federation).
STRIPPED_STATE_KEYS: tuple[StateKey, ...] = (
    ("m.room.create", ""),
    ("m.room.name", ""),
    ("m.room.avatar", ""),
    ("m.room.topic", ""),
    ("m.room.join_rules", ""),
    ("m.room.canonical_alias", ""),
    ("m.room.encryption", ""),
)


async def stripped_state_events(state: RoomStateReader, room: RoomRecord) -> list[Event]:
    """The current state events of ``room`` among :data:`STRIPPED_STATE_KEYS`, in key
    order (full events: federation sends them as PDUs, clients get them stripped)."""
    current = await state.current_state(room, STRIPPED_STATE_KEYS)
    return [event for _key, event in sorted(current.items())]
