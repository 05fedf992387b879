"""What a notification says about its event besides the event itself: the sender's
display name, the room's name and alias (push-gateway-api.md ``sender_display_name``,
``room_name``, ``room_alias``), read from the room's current state.

A notification is delivered to every pusher of every recipient, so the names are read
once per event and kept in a bounded LRU (:data:`MAX_CACHED_EVENTS`; the events
themselves are in the event store's cache): a message to a room of a thousand users
with pushers reads the room's state once, not a thousand times.  Within one read, each
room and sender is looked up once.  The names are those when the event was first
delivered to anyone, which is what a push about it should say.

spec: push-gateway-api.md#post_matrixpushv1notify
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from homeserver.events.event import Event
from homeserver.pushers.kinds import PendingNotification
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import EventStore
from homeserver.util.caches import LruCache

#: Events whose names are kept (three short strings each).
MAX_CACHED_EVENTS = 10_000


@attrs.frozen
class Names:
    sender_display_name: str | None = None
    room_name: str | None = None
    room_alias: str | None = None


@attrs.frozen
class NotificationDetails:
    event: Event
    sender_display_name: str | None = None
    room_name: str | None = None
    room_alias: str | None = None


class DetailsReader:
    def __init__(
        self, events: EventStore, state: RoomStateReader, *, cache_size: int = MAX_CACHED_EVENTS
    ) -> None:
        self._events = events
        self._state = state
        #: Event ID -> its names; shared by every pusher of this process.
        self._names: LruCache[str, Names] = LruCache(cache_size)

    async def read(
        self, pending: Sequence[PendingNotification], *, with_names: bool = True
    ) -> dict[str, NotificationDetails]:
        """event ID -> details, for the pending events still stored; ``with_names``
        False reads only the events (an ``event_id_only`` pusher needs no names)."""
        loaded = await self._events.get_events([p.event_id for p in pending])
        if not with_names:
            return {event_id: NotificationDetails(event) for event_id, event in loaded.items()}
        details = {}
        by_room_and_sender: dict[tuple[str, str], Names] = {}
        for event_id, event in loaded.items():
            names = self._names.get(event_id)
            if names is None:
                key = (event.room_id, event.sender)
                names = by_room_and_sender.get(key)
                if names is None:
                    names = by_room_and_sender[key] = await self._read_names(event)
                self._names.set(event_id, names)
            details[event_id] = NotificationDetails(
                event,
                sender_display_name=names.sender_display_name,
                room_name=names.room_name,
                room_alias=names.room_alias,
            )
        return details

    async def _read_names(self, event: Event) -> Names:
        room = await self._state.room(event.room_id)
        if room is None:
            return Names()
        keys = [
            ("m.room.name", ""),
            ("m.room.canonical_alias", ""),
            ("m.room.member", event.sender),
        ]
        state = await self._state.current_state(room, keys)
        return Names(
            sender_display_name=_string(state.get(keys[2]), "displayname"),
            room_name=_string(state.get(keys[0]), "name"),
            room_alias=_string(state.get(keys[1]), "alias"),
        )


def _string(event: Event | None, key: str) -> str | None:
    if event is None or not isinstance(event.content, dict):
        return None
    value = event.content.get(key)
    return value if isinstance(value, str) and value else None
