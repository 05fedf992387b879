"""The original state resolution algorithm, used only by room version 1.

spec: rooms/v1.md#state-resolution

Known to reset state in some forks (the spec warns as much); implemented as written
for compatibility with existing v1 rooms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from homeserver.events.auth import AuthError, auth_types_for_event, check_auth_rules
from homeserver.events.event import Event, StateKey, StateMap
from homeserver.events.room_versions import RoomVersion
from homeserver.events.state_res.errors import MissingEventsError

POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
MEMBER = "m.room.member"


def separate_v1(
    state_sets: Sequence[StateMap[str]],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """(R before any conflict is resolved, conflicting event IDs per key).

    spec: rooms/v1.md#state-resolution: a conflict is states having *different*
    event IDs for a key; a state that lacks the key does not conflict with one that
    has it, so R starts as the union of the states minus conflicting keys.
    """
    merged: dict[StateKey, str] = {}
    conflicts: dict[StateKey, set[str]] = {}
    for state_set in state_sets:
        for key, event_id in state_set.items():
            current = merged.setdefault(key, event_id)
            if current != event_id:
                conflicts.setdefault(key, {current}).add(event_id)
    for key in conflicts:
        del merged[key]
    return merged, conflicts


def _sha1(event_id: str) -> str:
    return hashlib.sha1(event_id.encode("utf-8")).hexdigest()


class _V1Resolver:
    def __init__(
        self, room_version: RoomVersion, event_map: Mapping[str, Event], state: dict[StateKey, str]
    ) -> None:
        self.room_version = room_version
        self.event_map = event_map
        self.state = state  # R, updated in place

    def event(self, event_id: str) -> Event:
        event = self.event_map.get(event_id)
        if event is None:
            raise MissingEventsError([event_id])
        return event

    def allowed(self, event: Event) -> bool:
        """Would the auth rules allow ``event`` in a room whose state is R?"""
        auth_state: dict[StateKey, Event] = {}
        for key in auth_types_for_event(
            self.room_version, event.type, event.sender, event.state_key, event.content
        ):
            event_id = self.state.get(key)
            if event_id is not None:
                auth_state[key] = self.event(event_id)
        try:
            check_auth_rules(self.room_version, event, auth_state)
        except AuthError:
            return False
        return True

    def resolve_auth_key(self, key: StateKey, event_ids: set[str]) -> None:
        """The power levels / join rules / membership pass.

        Ascending depth then descending sha1(event_id); the first is taken as is, each
        later one only while the auth rules allow it in R.
        """
        events = sorted((self.event(e) for e in event_ids), key=lambda e: _sha1(e.event_id))
        events.reverse()  # descending sha1; the stable sort by depth below keeps it
        events.sort(key=lambda e: e.depth)
        self.state[key] = events[0].event_id
        for event in events[1:]:
            if not self.allowed(event):
                break
            self.state[key] = event.event_id

    def resolve_other_key(self, key: StateKey, event_ids: set[str]) -> None:
        """Highest depth, then lowest sha1(event_id), among those allowed in R.

        The spec does not say what happens when none is allowed; like the deployed
        implementations we then keep the last candidate (the lowest depth), so the key
        is never dropped.
        """
        events = sorted((self.event(e) for e in event_ids), key=lambda e: _sha1(e.event_id))
        events.sort(key=lambda e: e.depth, reverse=True)
        chosen = events[-1]
        for event in events:
            if self.allowed(event):
                chosen = event
                break
        self.state[key] = chosen.event_id


def resolve_v1(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap[str]],
    event_map: Mapping[str, Event],
) -> dict[StateKey, str]:
    """Resolve ``state_sets`` with the room version 1 algorithm.

    spec: rooms/v1.md#state-resolution
    """
    resolved, conflicts = separate_v1(state_sets)
    if not conflicts:
        return resolved
    missing = {e for ids in conflicts.values() for e in ids if e not in event_map}
    if missing:
        raise MissingEventsError(missing)
    resolver = _V1Resolver(room_version, event_map, resolved)
    # Power levels, then join rules, then memberships, each pass seeing the
    # outcome of the previous ones; keys in sorted order so the result never depends
    # on the order of the state sets.
    for event_type in (POWER_LEVELS, JOIN_RULES, MEMBER):
        for key in sorted(k for k in conflicts if k[0] == event_type):
            resolver.resolve_auth_key(key, conflicts[key])
    for key in sorted(k for k in conflicts if k[0] not in (POWER_LEVELS, JOIN_RULES, MEMBER)):
        resolver.resolve_other_key(key, conflicts[key])
    return resolved
