"""Synapse's side of bench_state_res: run under Synapse's venv (bench.common.run_in_synapse).

Usage: python synapse_state_res.py DAG.json REPEAT

Loads the DAG written by bench_state_res.py, checks Synapse computes the same event
IDs, then times ``synapse.state.v2.resolve_events_with_store`` on the two fork states
and prints one JSON object of figures on the last line.

Synapse is driven the way it runs in production as far as we can without a database:
the events are "persisted" (``event_map`` is empty; the store hands them out from
memory, like Synapse's event cache), and the store answers
``get_auth_chain_difference`` from auth chains computed in memory here, standing in
for Synapse's chain cover index.  "cold" recomputes those chains for every call,
"warm" memoises them across calls, mirroring our cold/warm AuthChainIndex.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Collection
from typing import Any

import synapse.event_auth  # noqa: F401  (import first: breaks synapse.state's import cycle)
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
from synapse.events import EventBase, make_event_from_dict
from synapse.state.v2 import resolve_events_with_store
from synapse.storage.databases.main.event_federation import StateDifference


class NoSleepClock:
    async def sleep(self, duration: Any) -> None:
        return None


class InMemoryStore:
    """The StateResolutionStore protocol over a dict of events."""

    def __init__(self, events: dict[str, EventBase], memoise: bool) -> None:
        self.events = events
        self.memoise = memoise
        self.chains: dict[str, frozenset[str]] = {}

    async def get_events(
        self, event_ids: Collection[str], allow_rejected: bool = False
    ) -> dict[str, EventBase]:
        found = {}
        for event_id in event_ids:
            event = self.events.get(event_id)
            if event is not None and (allow_rejected or not event.rejected_reason):
                found[event_id] = event
        return found

    def _chain(self, event_id: str) -> frozenset[str]:
        """Auth chain of ``event_id`` (without it), iteratively with a memo."""
        chains = self.chains
        stack = [event_id]
        while stack:
            current = stack[-1]
            if current in chains:
                stack.pop()
                continue
            parents = self.events[current].auth_event_ids()
            todo = [p for p in parents if p not in chains]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            acc = set(parents)
            for parent in parents:
                acc |= chains[parent]
            chains[current] = frozenset(acc)
        return chains[event_id]

    async def get_auth_chain_difference(
        self,
        room_id: str,
        state_sets: list[set[str]],
        conflicted_state: set[str] | None,
        additional_backwards_reachable_conflicted_events: set[str] | None,
    ) -> StateDifference:
        if not self.memoise:
            self.chains = {}
        full = [s.union(*(self._chain(e) for e in s)) for s in state_sets]
        difference = full[0].union(*full[1:]) - full[0].intersection(*full[1:])
        subgraph = None
        if conflicted_state is not None:
            targets = set(conflicted_state) | (
                additional_backwards_reachable_conflicted_events or set()
            )
            below: set[str] = set()
            subgraph = set()
            for event_id in targets:
                chain = self._chain(event_id)
                if not chain.isdisjoint(targets):
                    subgraph.add(event_id)
                    below |= chain
            for event_id in below:
                if event_id in targets or not self._chain(event_id).isdisjoint(targets):
                    subgraph.add(event_id)
        return StateDifference(auth_difference=difference, conflicted_subgraph=subgraph)


def main() -> None:
    path, repeat = sys.argv[1], int(sys.argv[2])
    with open(path) as f:
        data = json.load(f)
    room_version = KNOWN_ROOM_VERSIONS[data["room_version"]]
    events: dict[str, EventBase] = {}
    for entry in data["events"]:
        event = make_event_from_dict(entry["pdu"], room_version, rejected_reason=entry["rejected"])
        if event.event_id != entry["event_id"]:
            raise SystemExit(f"event ID mismatch: {event.event_id} != {entry['event_id']}")
        events[event.event_id] = event
    state_sets = [{(t, k): v for t, k, v in s} for s in data["state_sets"]]
    expected = {(t, k): v for t, k, v in data["expected"]}

    def run(store: InMemoryStore) -> dict[tuple[str, str], str]:
        coro = resolve_events_with_store(
            NoSleepClock(), data["room_id"], room_version, state_sets, None, store
        )
        return dict(asyncio.run(coro))

    figures: dict[str, float] = {}
    for name, memoise in (("cold", False), ("warm", True)):
        store = InMemoryStore(events, memoise)
        result = run(store)  # also warms the memo for "warm"
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            result = run(store)
            times.append(time.perf_counter() - start)
        figures[f"{name}_ms"] = statistics.median(times) * 1000
        figures["same_result"] = float(result == expected)
        if result != expected:
            differing = {
                k for k in result.keys() | expected.keys() if result.get(k) != expected.get(k)
            }
            figures["differing_keys"] = float(len(differing))
            print("differing:", sorted(differing)[:10], file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
