"""Reading a room's state: current, or at an event.  Caches live in the stores."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from homeserver import errors
from homeserver.events.event import Event, StateKey
from homeserver.storage.events import EventStore, RoomRecord
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import MembershipRow, TimelineStore


class RoomStateReader:
    def __init__(self, events: EventStore, state: StateStore, timeline: TimelineStore) -> None:
        self._events = events
        self._state = state
        self._timeline = timeline

    async def room(self, room_id: str) -> RoomRecord | None:
        return await self._events.get_room(room_id)

    async def room_or_404(self, room_id: str) -> RoomRecord:
        room = await self._events.get_room(room_id)
        if room is None:
            raise errors.not_found("Unknown room")
        return room

    async def current_state_ids(self, room: RoomRecord) -> Mapping[StateKey, str]:
        if room.current_state_group is None:
            return {}
        return await self._state.get_state_ids(room.current_state_group)

    async def state_ids_for_group(self, group: int | None) -> Mapping[StateKey, str]:
        return {} if group is None else await self._state.get_state_ids(group)

    async def state_ids_for_keys(
        self, group: int | None, keys: Sequence[StateKey]
    ) -> dict[StateKey, str]:
        """Only ``keys`` of a group's state: what visibility and membership questions
        need, without reading the whole state of a big room."""
        return {} if group is None else await self._state.get_state_for_keys(group, keys)

    async def current_state(
        self, room: RoomRecord, keys: Iterable[StateKey] | None = None
    ) -> dict[StateKey, Event]:
        """The current state events, all of them or only ``keys``."""
        return await self.events_for_state(await self.current_state_ids(room), keys)

    async def events_for_state(
        self, state_ids: Mapping[StateKey, str], keys: Iterable[StateKey] | None = None
    ) -> dict[StateKey, Event]:
        wanted = (
            state_ids if keys is None else {key: state_ids[key] for key in keys if key in state_ids}
        )
        loaded = await self._events.get_events(list(wanted.values()))
        return {key: loaded[event_id] for key, event_id in wanted.items() if event_id in loaded}

    async def state_before(self, event: Event) -> Mapping[StateKey, str]:
        return await self.state_ids_for_group(event.internal.state_group_before)

    async def state_after(self, event: Event) -> Mapping[StateKey, str]:
        """The state after ``event`` (itself included if it is accepted state)."""
        state = await self.state_before(event)
        if event.is_state() and not event.rejected and not event.internal.soft_failed:
            return {**state, event.state_key_tuple: event.event_id}
        return state

    async def state_at_position(
        self, room_nid: int, position: int
    ) -> Mapping[StateKey, str] | None:
        """The state after the room's last visible event at or before stream
        ``position``; None if the room has no event that early."""
        events = await self._timeline.get_room_events(
            room_nid, after=None, up_to=position, direction="b", limit=1
        )
        return await self.state_after(events[0]) if events else None

    async def membership(self, room: RoomRecord, user_id: str) -> MembershipRow | None:
        return await self._timeline.get_membership(room.room_nid, user_id)
