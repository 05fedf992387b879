"""The two orderings of state resolution v2: reverse topological power and mainline.

spec: rooms/fragments/v2-state-res.md#definitions ("Power events", "Reverse
topological power ordering", "Mainline ordering")

These helpers work on event IDs plus callables supplied by the resolver, so they hold
no event-lookup policy of their own and are easy to test in isolation.  Both are
O(n log n) in the number of events sorted (plus the edges between them) and neither
recurses over the DAG.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Collection, Iterable
from typing import Any

from homeserver.events.event import Event

POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
MEMBER = "m.room.member"


def is_power_event(event: Event) -> bool:
    """Power levels, join rules, or someone else's leave/ban (a kick or a ban).

    spec: rooms/fragments/v2-state-res.md#definitions ("Power events")
    """
    if not event.is_state():
        return False
    if event.type in (POWER_LEVELS, JOIN_RULES):
        return True
    return (
        event.type == MEMBER
        and event.membership in ("leave", "ban")
        and event.sender != event.state_key
    )


def lexicographic_topological_sort(
    nodes: Collection[str],
    parents_of: Callable[[str], Iterable[str]],
    sort_key: Callable[[str], Any],
) -> list[str]:
    """Kahn's algorithm, always taking the smallest ready node by ``sort_key``.

    ``parents_of(n)`` yields the nodes (within ``nodes``) that must come before ``n``.
    Gives the lexicographically smallest topological order, earliest first, which is
    the spec's reverse topological power ordering when ``sort_key`` is the power
    comparison.  ``sort_key`` must be unique per node (it ends with the event ID).
    """
    node_set = nodes if isinstance(nodes, set | frozenset) else set(nodes)
    children: dict[str, list[str]] = {n: [] for n in node_set}
    waiting: dict[str, int] = {}
    for node in node_set:
        count = 0
        for parent in parents_of(node):
            if parent in node_set and parent != node:
                children[parent].append(node)
                count += 1
        waiting[node] = count
    heap = [(sort_key(n), n) for n, count in waiting.items() if count == 0]
    heapq.heapify(heap)
    ordered: list[str] = []
    while heap:
        _, node = heapq.heappop(heap)
        ordered.append(node)
        for child in children[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(heap, (sort_key(child), child))
    if len(ordered) != len(node_set):
        # A cycle (only forgeable with v1/v2 event IDs).  Keep the result total and
        # deterministic rather than dropping events: the rest follow in key order.
        done = set(ordered)
        ordered.extend(sorted((n for n in node_set if n not in done), key=sort_key))
    return ordered


def mainline_order(
    event_ids: Iterable[str],
    power_levels_id: str | None,
    pl_parent: Callable[[str], str | None],
    origin_server_ts: Callable[[str], int],
) -> list[str]:
    """Sort ``event_ids`` by the mainline ordering based on ``power_levels_id``.

    spec: rooms/fragments/v2-state-res.md#definitions ("Mainline ordering")

    ``pl_parent(e)`` is the m.room.power_levels event among ``e``'s auth events, or
    None.  An event's mainline position is that of the first power levels event on
    its own power-levels ancestry that lies on the mainline; positions are memoised
    per power levels event, so each step of any ancestry is walked once however many
    events share it.  Larger positions (older mainline events) sort first; events
    off the mainline (position ∞) come before all others.
    """
    # Position i of each mainline event: P0 is the resolved power levels event.
    position: dict[str, float] = {}
    index = 0
    current = power_levels_id
    while current is not None and current not in position:
        position[current] = index
        index += 1
        current = pl_parent(current)

    # memo: power levels event -> mainline position of events citing it.
    memo: dict[str, float] = dict(position)

    def position_of_pl(pl_id: str | None) -> float:
        path: list[str] = []
        seen: set[str] = set()
        result = math.inf
        while pl_id is not None:
            known = memo.get(pl_id)
            if known is not None:
                result = known
                break
            if pl_id in seen:  # forged cycle: treat as off the mainline
                break
            path.append(pl_id)
            seen.add(pl_id)
            pl_id = pl_parent(pl_id)
        for visited in path:
            memo[visited] = result
        return result

    keyed = [
        (-position_of_pl(pl_parent(event_id)), origin_server_ts(event_id), event_id)
        for event_id in event_ids
    ]
    keyed.sort()
    return [event_id for _, _, event_id in keyed]
