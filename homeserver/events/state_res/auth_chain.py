"""Memoised auth chains and the auth difference of state sets.

spec: rooms/fragments/v2-state-res.md#definitions ("Auth chain", "Auth difference")

An event's auth chain is every event reachable through ``auth_events`` links.  Event
IDs name immutable events, so a chain computed once stays right for ever: the index
keeps one ``frozenset`` per event and is meant to live as long as the caller likes
(one per room, say), making later resolutions in the same room cheap.  The walk is an
explicit stack, never recursion, so rooms whose auth DAG is tens of thousands of
events deep work.  Memory is the sum of the chain sizes, which stays small in
practice because auth chains follow power level / join rule / membership history,
not the room's timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from homeserver.events.event import Event, StateMap
from homeserver.events.state_res.errors import MissingEventsError

_EMPTY: frozenset[str] = frozenset()


class AuthChainIndex:
    """``event_id -> frozenset`` of all its auth ancestors, filled in on demand.

    Built over an event map (``event_id -> Event``); every method also accepts an
    ``event_map`` that is consulted instead, for events the index has not seen yet.
    Events already indexed are never looked up again, so a warm index does not need
    the full room in the map.
    """

    __slots__ = ("_chains", "_event_map", "_parents")

    def __init__(self, event_map: Mapping[str, Event] | None = None) -> None:
        self._event_map: Mapping[str, Event] = event_map if event_map is not None else {}
        self._chains: dict[str, frozenset[str]] = {}
        # event_id -> its auth_events IDs, so the PDU is parsed once per event.
        self._parents: dict[str, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._chains)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._chains

    def auth_event_ids(
        self, event_id: str, event_map: Mapping[str, Event] | None = None
    ) -> tuple[str, ...]:
        """The event's own ``auth_events`` IDs; raises MissingEventsError if unknown."""
        parents = self._lookup_parents(event_id, event_map)
        if parents is None:
            raise MissingEventsError([event_id])
        return parents

    def auth_chain(
        self, event_id: str, event_map: Mapping[str, Event] | None = None
    ) -> frozenset[str]:
        """All events reachable from ``event_id`` via ``auth_events`` (not the event itself)."""
        chain = self._chains.get(event_id)
        if chain is None:
            self.ensure((event_id,), event_map)
            chain = self._chains[event_id]
        return chain

    def ensure(
        self, event_ids: Iterable[str], event_map: Mapping[str, Event] | None = None
    ) -> None:
        """Compute the chains of ``event_ids`` (and of all their ancestors).

        Raises MissingEventsError naming *every* unreachable event found, after walking
        as much of the DAG as it can, so the caller fetches them in one round.
        """
        chains = self._chains
        missing: set[str] = set()
        # Events whose chain cannot be known because an ancestor is missing.
        broken: set[str] = set()
        expanded: set[str] = set()
        # set.difference against a dict is a C-level probe per root.
        for root in set(event_ids).difference(chains):
            stack = [root]
            while stack:
                event_id = stack[-1]
                if event_id in chains or event_id in broken:
                    stack.pop()
                    continue
                parents = self._lookup_parents(event_id, event_map)
                if parents is None:
                    missing.add(event_id)
                    broken.add(event_id)
                    stack.pop()
                    continue
                if event_id not in expanded:
                    # First visit: make sure every parent is done before this event.
                    expanded.add(event_id)
                    todo = [p for p in parents if p not in chains and p not in broken]
                    if todo:
                        stack.extend(todo)
                        continue
                # Second visit (or no pending parents): all parents are finished,
                # except on a cycle (only forgeable with v1/v2 IDs), which is cut here.
                stack.pop()
                if any(p in broken for p in parents):
                    broken.add(event_id)
                    continue
                acc = set(parents)
                for parent in parents:
                    parent_chain = chains.get(parent)
                    if parent_chain:
                        acc |= parent_chain
                chains[event_id] = frozenset(acc)
        if missing:
            raise MissingEventsError(missing)

    def closure(
        self, event_ids: Iterable[str], event_map: Mapping[str, Event] | None = None
    ) -> set[str]:
        """``event_ids`` together with all their auth chains."""
        ids = event_ids if isinstance(event_ids, set | frozenset) else set(event_ids)
        self.ensure(ids, event_map)
        chains = self._chains
        return set(ids).union(*[chains[e] for e in ids])

    def auth_difference(
        self,
        state_sets: Sequence[StateMap[str]],
        event_map: Mapping[str, Event] | None = None,
    ) -> set[str]:
        """∪ Cᵢ − ∩ Cᵢ, where Cᵢ is the full auth chain of state set Sᵢ.

        spec: rooms/fragments/v2-state-res.md#definitions ("Auth difference")

        Cᵢ here includes the events of Sᵢ themselves, not only their ancestors.  That
        only matters for an event present in every state set but cited by the state
        of just some of them: it is agreed on, so it is not part of the difference.

        Events in every Sᵢ contribute the same ``U`` to every Cᵢ, so with
        Cᵢ = U ∪ Dᵢ the difference is ∪Dᵢ − ∩Dᵢ − U: the per-set work is only over the
        events that differ, and ``U`` is one C-level union of memoised chains.
        """
        if len(state_sets) < 2:
            return set()
        id_sets = [set(state_set.values()) for state_set in state_sets]
        common = set.intersection(*id_sets)
        # One walk over everything first, so all missing events are reported together.
        self.ensure(set().union(*id_sets), event_map)
        per_set = [self.closure(ids - common, event_map) for ids in id_sets]
        candidates = per_set[0].union(*per_set[1:]) - per_set[0].intersection(*per_set[1:])
        if not candidates:
            return candidates
        chains = self._chains
        shared = set(common).union(*map(chains.__getitem__, common))
        return candidates - shared

    def _lookup_parents(
        self, event_id: str, event_map: Mapping[str, Event] | None
    ) -> tuple[str, ...] | None:
        parents = self._parents.get(event_id)
        if parents is not None:
            return parents
        event = None
        if event_map is not None:
            event = event_map.get(event_id)
        if event is None:
            event = self._event_map.get(event_id)
        if event is None:
            return None
        parents = tuple(event.auth_event_ids)
        self._parents[event_id] = parents
        return parents
