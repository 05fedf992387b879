"""The event path's reads of room state (``homeserver.rooms.event_path``): the state
after a set of events (resolved across forks with the room version's algorithm), the
remote's state at a gap, the few state events the auth rules read for an event, and
events by ID from the batch being decided or the store.

spec: rooms/fragments/v2-state-res.md, server-server-api.md#checks-performed-on-receipt-of-a-pdu
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from homeserver.events.event import Event, StateKey
from homeserver.events.state_res import MissingEventsError, resolve_state
from homeserver.rooms.event_batch import auth_state_keys, same_group, state_diff
from homeserver.rooms.event_path_types import RoomView, StateContext
from homeserver.rooms.remote_events import EventsUnavailable
from homeserver.storage.events import EventStore, NewStateGroup, StateGroupRef
from homeserver.storage.state import StateStore

#: Rounds of loading events state resolution asks for (auth chains, layer by layer).
_MAX_RESOLVE_ROUNDS = 50


class RoomStates:
    def __init__(self, events: EventStore, state: StateStore) -> None:
        self._events = events
        self._state = state

    async def state_after_all(self, view: RoomView, event_ids: Sequence[str]) -> StateContext:
        """The state after all of ``event_ids``: resolved when they differ; the empty
        state for none (only a create event has no prev_events)."""
        contexts: list[StateContext] = []
        stored_ids = []
        for event_id in dict.fromkeys(event_ids):
            decided = view.state_after(event_id)
            if decided is None and event_id in view.gaps:
                decided = await self.gap_context(view, event_id)
            if decided is not None:
                contexts.append(decided)
            else:
                stored_ids.append(event_id)
        if stored_ids:
            groups = await self._events.get_state_groups_after(stored_ids)
            unknown = [event_id for event_id in stored_ids if event_id not in groups]
            if unknown:
                raise EventsUnavailable(unknown)
            for event_id in stored_ids:
                group = groups[event_id]
                contexts.append(StateContext(group, await self._state.get_state_ids(group)))
        if not contexts:
            return StateContext(NewStateGroup(None, {}, {}), {})
        distinct: list[StateContext] = []
        for context in contexts:
            if not any(self.same_group(context.group, d.group) for d in distinct):
                distinct.append(context)
        if len(distinct) == 1:
            return distinct[0]
        resolved = await self.resolve(view, [d.state for d in distinct])
        base = distinct[0]
        return StateContext(
            NewStateGroup(base.group, state_diff(base.state, resolved), resolved), resolved
        )

    async def gap_context(self, view: RoomView, event_id: str) -> StateContext:
        """The state after a prev event of a gap: the remote's, less the events of it
        that were rejected (a snapshot, since it shares nothing we know of)."""
        context = view.gap_contexts.get(event_id)
        if context is None:
            gap = view.gaps[event_id]
            held = await self.events_by_id(view, gap.values())
            state = {
                key: state_id
                for key, state_id in gap.items()
                if state_id in held and not held[state_id].rejected
            }
            context = StateContext(NewStateGroup(None, state, state), state)
            view.gap_contexts[event_id] = context
        return context

    async def resolve(
        self, view: RoomView, state_sets: Sequence[Mapping[StateKey, str]]
    ) -> dict[StateKey, str]:
        wanted = {event_id for state in state_sets for event_id in state.values()}
        event_map = await self.events_by_id(view, wanted)
        for _round in range(_MAX_RESOLVE_ROUNDS):
            try:
                return resolve_state(view.room_version, state_sets, event_map)
            except MissingEventsError as missing:
                fetched = await self.events_by_id(view, missing.event_ids)
                if not fetched:
                    raise EventsUnavailable(missing.event_ids) from None
                event_map.update(fetched)
        raise EventsUnavailable(())

    async def auth_state(
        self, view: RoomView, event: Event, state: Mapping[StateKey, str]
    ) -> dict[StateKey, Event]:
        """The events of ``state`` the auth rules read for ``event``: its few keys,
        never the whole room state.

        In a room with partial state, a membership the state lacks may only have
        been left out by the resident server: the event's own auth event for it
        stands in (it was checked when stored), as it is all this server knows.
        """
        keys = auth_state_keys(
            view.room_version, event.type, event.sender, event.state_key, event.content
        )
        wanted = {key: state[key] for key in keys if key in state}
        if view.partial:
            lacking = {key for key in keys if key not in wanted and key[0] == "m.room.member"}
            if lacking:
                cited = await self.events_by_id(view, event.auth_event_ids)
                for auth_event in cited.values():
                    key = auth_event.state_key_tuple if auth_event.is_state() else None
                    if key in lacking and not auth_event.rejected:
                        wanted[key] = auth_event.event_id
        loaded = await self.events_by_id(view, wanted.values())
        return {key: loaded[event_id] for key, event_id in wanted.items() if event_id in loaded}

    async def events_by_id(self, view: RoomView, event_ids: Iterable[str]) -> dict[str, Event]:
        found: dict[str, Event] = {}
        to_load = []
        for event_id in event_ids:
            decided = view.event(event_id)
            if decided is not None:
                found[event_id] = decided
            else:
                to_load.append(event_id)
        if to_load:
            found.update(await self._events.get_events(to_load))
        return found

    def same_group(self, a: StateGroupRef | None, b: StateGroupRef | None) -> bool:
        """Whether two references name one state group (a new group, once written,
        is the same as its stored ID)."""
        return same_group(self._events.stored_group(a), self._events.stored_group(b))
