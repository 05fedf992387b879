"""State resolution v2 (room versions 2-11) and its v12 iteration ("v2.1").

spec: rooms/fragments/v2-state-res.md#algorithm, rooms/v12.md#state-resolution

Cost model: splitting the state sets and the auth difference are linear in the state
size with C-level set/dict operations over memoised chains; everything after that
(orderings, iterative auth checks) touches only the full conflicted set, whose size
follows the divergence between the forks rather than the size of the room.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from homeserver.events.auth import (
    AuthError,
    auth_types_for_event,
    check_auth_rules,
    get_user_power_level,
)
from homeserver.events.event import Event, StateKey, StateMap
from homeserver.events.room_versions import RoomVersion, StateResAlgorithm
from homeserver.events.state_res.auth_chain import AuthChainIndex
from homeserver.events.state_res.errors import MissingEventsError
from homeserver.events.state_res.ordering import (
    POWER_LEVELS,
    is_power_event,
    lexicographic_topological_sort,
    mainline_order,
)

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = (POWER_LEVELS, "")


def separate(
    state_sets: Sequence[StateMap[str]],
) -> tuple[dict[StateKey, str], set[StateKey]]:
    """Split into the unconflicted state map and the keys whose values conflict.

    spec: rooms/fragments/v2-state-res.md#definitions ("Unconflicted state map and
    conflicted state set"): a key is unconflicted only if *every* set has it, with the
    same value; a key missing from some set is conflicted.
    """
    # One pass over the first set, probing the others: about twice as fast as
    # intersecting item views, and this is one of the few passes over the whole state.
    first, rest = state_sets[0], state_sets[1:]
    if len(rest) == 1:
        other_get = rest[0].get
        unconflicted = {k: v for k, v in first.items() if other_get(k) == v}
    else:
        getters = [s.get for s in rest]
        unconflicted = {k: v for k, v in first.items() if all(g(k) == v for g in getters)}
    all_keys: set[StateKey] = set(first).union(*rest)
    return unconflicted, all_keys - unconflicted.keys()


def conflicted_state_subgraph(
    conflicted: Collection[str], index: AuthChainIndex, event_map: Mapping[str, Event]
) -> set[str]:
    """Events on an ``auth_events`` path between two conflicted events, endpoints included.

    spec: rooms/v12.md#definitions ("Conflicted state subgraph")

    ``x`` lies on a path from conflicted ``c1`` down to conflicted ``c2`` exactly when
    ``x`` is in ``c1``'s auth chain and ``c2`` is in ``x``'s auth chain (or is ``x``).
    """
    conflicted_set = set(conflicted)
    index.ensure(conflicted_set, event_map)
    subgraph: set[str] = set()
    below_conflicted: set[str] = set()
    for event_id in conflicted_set:
        chain = index.auth_chain(event_id, event_map)
        if not chain.isdisjoint(conflicted_set):
            subgraph.add(event_id)  # a path starts here
            below_conflicted |= chain
    for event_id in below_conflicted:
        if event_id in conflicted_set:
            subgraph.add(event_id)  # a path ends here
        elif not index.auth_chain(event_id, event_map).isdisjoint(conflicted_set):
            subgraph.add(event_id)
    return subgraph


class _Resolver:
    """One resolution's lookups and memos: events, sender power levels, PL parents."""

    def __init__(
        self,
        room_version: RoomVersion,
        event_map: Mapping[str, Event],
        index: AuthChainIndex,
        create_event: Event | None,
    ) -> None:
        self.room_version = room_version
        self.event_map = event_map
        self.index = index
        # v12 events do not cite the create event, yet the auth rules need it.
        self.create_event = create_event
        self._power: dict[tuple[str, str | None, str | None], int | float] = {}
        self._pl_parent: dict[str, str | None] = {}

    def event(self, event_id: str) -> Event:
        event = self.event_map.get(event_id)
        if event is None:
            raise MissingEventsError([event_id])
        return event

    def require(self, event_ids: Iterable[str]) -> None:
        """Raise MissingEventsError for all of ``event_ids`` absent from the map at once."""
        missing = [e for e in event_ids if e not in self.event_map]
        if missing:
            raise MissingEventsError(missing)

    def _auth_event_of(self, event_id: str, key: StateKey) -> Event | None:
        for auth_id in self.index.auth_event_ids(event_id, self.event_map):
            auth_event = self.event(auth_id)
            if auth_event.is_state() and auth_event.state_key_tuple == key:
                return auth_event
        return None

    def pl_parent(self, event_id: str) -> str | None:
        """The m.room.power_levels event among ``event_id``'s auth events (memoised)."""
        if event_id in self._pl_parent:
            return self._pl_parent[event_id]
        found = self._auth_event_of(event_id, POWER_LEVELS_KEY)
        parent = found.event_id if found is not None else None
        self._pl_parent[event_id] = parent
        return parent

    def sender_power(self, event_id: str) -> int | float:
        """The sender's power level judged by the event's own auth events.

        spec: rooms/fragments/v2-state-res.md#definitions ("Reverse topological power
        ordering", rule 1).  Memoised per (sender, power levels event, create event):
        those are all the level depends on.
        """
        event = self.event(event_id)
        pl_id = self.pl_parent(event_id)
        create = self.create_event
        if create is None:
            create = self._auth_event_of(event_id, CREATE_KEY)
        memo_key = (event.sender, pl_id, create.event_id if create is not None else None)
        level = self._power.get(memo_key)
        if level is None:
            state: dict[StateKey, Event] = {}
            if pl_id is not None:
                state[POWER_LEVELS_KEY] = self.event(pl_id)
            if create is not None:
                state[CREATE_KEY] = create
            level = get_user_power_level(self.room_version, event.sender, state)
            self._power[memo_key] = level
        return level

    def power_sort_key(self, event_id: str) -> tuple[float, int, str]:
        # Greater power first, then older, then smaller ID.
        return (-self.sender_power(event_id), self.event(event_id).origin_server_ts, event_id)

    def iterative_auth_checks(
        self, state: dict[StateKey, str], event_ids: Iterable[str]
    ) -> dict[StateKey, str]:
        """Apply each event to ``state`` (in place) if the auth rules allow it there.

        spec: rooms/fragments/v2-state-res.md#definitions ("Iterative auth checks"),
        "Rejected events".  The auth state is the event's own non-rejected auth events,
        overridden by the (non-rejected) events ``state`` holds for the keys the auth
        rules select.  Events previously rejected against the state at the event are
        checked like any other (the spec says they are handled as usual); rejected
        events are never used *as* auth events.
        """
        room_version = self.room_version
        for event_id in event_ids:
            event = self.event(event_id)
            if not event.is_state():
                continue
            auth_state: dict[StateKey, Event] = {}
            for auth_id in self.index.auth_event_ids(event_id, self.event_map):
                auth_event = self.event(auth_id)
                if auth_event.is_state() and not auth_event.rejected:
                    auth_state[auth_event.state_key_tuple] = auth_event
            if self.create_event is not None:
                auth_state[CREATE_KEY] = self.create_event
            for key in auth_types_for_event(
                room_version, event.type, event.sender, event.state_key, event.content
            ):
                current_id = state.get(key)
                if current_id is not None:
                    current = self.event(current_id)
                    if not current.rejected:
                        auth_state[key] = current
            try:
                check_auth_rules(room_version, event, auth_state)
            except AuthError:
                continue
            state[event.state_key_tuple] = event_id
        return state


def _room_create_event(
    unconflicted: Mapping[StateKey, str],
    state_sets: Sequence[StateMap[str]],
    conflicted_events: Iterable[str],
    event_map: Mapping[str, Event],
) -> Event:
    """v12: the room's create event, named by the state or by the room ID it hashes to."""
    create_id = unconflicted.get(CREATE_KEY)
    if create_id is None:
        for state_set in state_sets:
            create_id = state_set.get(CREATE_KEY)
            if create_id is not None:
                break
    if create_id is None:
        for event_id in conflicted_events:
            event = event_map.get(event_id)
            if event is not None and event.room_id:
                # spec: rooms/v12.md: room ID = "!" + the create event's reference hash.
                create_id = "$" + event.room_id[1:]
                break
    if create_id is None:
        raise ValueError("cannot tell the room's create event: no state or room ID names it")
    create = event_map.get(create_id)
    if create is None:
        raise MissingEventsError([create_id])
    return create


def full_conflicted_set(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap[str]],
    conflicted_keys: Iterable[StateKey],
    event_map: Mapping[str, Event],
    index: AuthChainIndex,
) -> tuple[set[str], set[str]]:
    """(conflicted state set, full conflicted set).

    spec: rooms/fragments/v2-state-res.md#definitions ("Full conflicted set"); for
    v12 also the conflicted state subgraph (rooms/v12.md#definitions).
    """
    conflicted: set[str] = set()
    for key in conflicted_keys:
        for state_set in state_sets:
            event_id = state_set.get(key)
            if event_id is not None:
                conflicted.add(event_id)
    full = conflicted | index.auth_difference(state_sets, event_map)
    if room_version.state_res is StateResAlgorithm.V2_1:
        full |= conflicted_state_subgraph(conflicted, index, event_map)
    return conflicted, full


def power_subgraph(
    full: set[str], event_map: Mapping[str, Event], index: AuthChainIndex
) -> tuple[set[str], dict[str, list[str]]]:
    """The set X of step 1 and its auth edges: ``(X, {event: its auth events in X})``.

    spec: rooms/fragments/v2-state-res.md#algorithm step 1 and "Reverse topological
    power ordering" ("the DAG formed by auth events").

    X is read, as deployed servers read it, as the auth-event graph induced on the
    full conflicted set: the power events plus everything reachable from them along
    ``auth_events`` links that stay inside the full conflicted set, ordered by those
    direct links.  The wording "the auth chain of P" would differ only where a chain
    leaves the full conflicted set and re-enters it at a conflicted event that every
    state set's auth chain already holds (v12's conflicted subgraph closes most such
    gaps); there, matching the rest of the federation keeps room state convergent.
    """
    power = [e for e in full if is_power_event(event_map[e])]
    selected = set(power)
    edges: dict[str, list[str]] = {}
    stack = power
    while stack:
        event_id = stack.pop()
        parents = [a for a in index.auth_event_ids(event_id, event_map) if a in full]
        edges[event_id] = parents
        for parent in parents:
            if parent not in selected:
                selected.add(parent)
                stack.append(parent)
    return selected, edges


def resolve_v2(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap[str]],
    event_map: Mapping[str, Event],
    index: AuthChainIndex,
) -> dict[StateKey, str]:
    """Resolve ``state_sets`` with state resolution v2, or v2.1 for v12 rooms.

    spec: rooms/fragments/v2-state-res.md#algorithm, rooms/v12.md#algorithm
    """
    unconflicted, conflicted_keys = separate(state_sets)
    if not conflicted_keys:
        return unconflicted
    conflicted, full = full_conflicted_set(
        room_version, state_sets, conflicted_keys, event_map, index
    )
    missing = [e for e in full if e not in event_map]
    if missing:
        raise MissingEventsError(missing)
    create_event = None
    if room_version.hydra:
        create_event = _room_create_event(unconflicted, state_sets, conflicted, event_map)
    resolver = _Resolver(room_version, event_map, index, create_event)
    # The iterative auth checks read every auth event of these; ask for all at once.
    resolver.require(
        {a for e in full for a in index.auth_event_ids(e, event_map)} - event_map.keys()
    )

    # Step 1: power events and their auth ancestry within the full conflicted set,
    # sorted so that each event follows its auth events.
    selected, auth_edges = power_subgraph(full, event_map, index)
    power_sorted = lexicographic_topological_sort(
        selected, auth_edges.__getitem__, resolver.power_sort_key
    )

    # Step 2: v2 starts from the unconflicted state map, v2.1 from the empty map.
    start = {} if room_version.state_res is StateResAlgorithm.V2_1 else dict(unconflicted)
    partial = resolver.iterative_auth_checks(start, power_sorted)

    # Step 3: everything else, in mainline order of the resolved power levels.
    others = [e for e in full if e not in selected and event_map[e].is_state()]
    ordered = mainline_order(
        others,
        partial.get(POWER_LEVELS_KEY),
        resolver.pl_parent,
        lambda e: event_map[e].origin_server_ts,
    )

    # Step 4, then step 5: the unconflicted state map always wins.
    resolved = resolver.iterative_auth_checks(partial, ordered)
    resolved.update(unconflicted)
    return resolved
