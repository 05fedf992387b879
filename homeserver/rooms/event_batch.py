"""Pure helpers of the event path: the order a batch is decided in, state diffs, and
the state the auth rules read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from homeserver.events.auth import auth_types_for_event
from homeserver.events.event import Event, StateKey
from homeserver.events.receipt import ReceiptOutcome
from homeserver.events.room_versions import RoomVersion
from homeserver.storage.events import StateGroupRef


def state_diff(
    old: Mapping[StateKey, str], new: Mapping[StateKey, str]
) -> dict[StateKey, str | None]:
    changes: dict[StateKey, str | None] = {
        key: event_id for key, event_id in new.items() if old.get(key) != event_id
    }
    changes.update({key: None for key in old if key not in new})
    return changes


def outcome_of(event: Event) -> ReceiptOutcome:
    if event.internal.rejected_reason is not None:
        return ReceiptOutcome.rejected(event.internal.rejected_reason)
    if event.internal.soft_failed:
        return ReceiptOutcome.soft_failed("current state")
    return ReceiptOutcome.ACCEPTED


def placed_in_graph(event: Event) -> bool:
    """Whether a known event has its place in the room's graph (a state before it,
    which later events can build on): neither an outlier nor an out-of-band
    membership (stored with a stream position but no state)."""
    internal = event.internal
    return not internal.outlier and not (internal.stored and internal.state_group_before is None)


def takes_its_place(stored: Event, arriving: Event) -> bool:
    """Whether an event stored without its place in the graph now arrives with it
    (it becomes a timeline event rather than a duplicate)."""
    return not placed_in_graph(stored) and not arriving.internal.outlier


def in_dependency_order(
    events: Iterable[Event], extra_cites: Mapping[str, Iterable[str]] | None = None
) -> list[Event]:
    """``events`` with every event after the ones it cites among them (prev and auth
    events, and ``extra_cites``: the events of the gap states it builds on),
    otherwise by depth then arrival; events in a citation cycle (only a broken or
    malicious server makes one) come last, where their checks fail."""
    pending = list(events)
    ids = {e.event_id for e in pending}
    extra = extra_cites or {}
    cites = {
        e.event_id: {
            c
            for c in (*e.prev_event_ids, *e.auth_event_ids, *extra.get(e.event_id, ()))
            if c in ids and c != e.event_id
        }
        for e in pending
    }
    arrival = {e.event_id: index for index, e in enumerate(pending)}
    ordered: list[Event] = []
    placed: set[str] = set()
    while pending:
        ready = [e for e in pending if cites[e.event_id] <= placed]
        if not ready:
            ordered.extend(sorted(pending, key=lambda e: (e.depth, arrival[e.event_id])))
            break
        ready.sort(key=lambda e: (e.depth, arrival[e.event_id]))
        ordered.extend(ready)
        placed.update(e.event_id for e in ready)
        pending = [e for e in pending if e.event_id not in placed]
    return ordered


def auth_state_keys(
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, object],
) -> set[StateKey]:
    """The state the auth rules read for an event: its auth event types, plus the
    create event (which v12 leaves out of ``auth_events`` but the rules still read)."""
    keys = auth_types_for_event(room_version, event_type, sender, state_key, content)
    keys.add(("m.room.create", ""))
    return keys


def auth_ids(room_version: RoomVersion, event: Event) -> list[str]:
    """The events the step-4 check reads: the cited auth events, and in v12 rooms the
    create event, whose ID the room ID carries."""
    ids = list(event.auth_event_ids)
    if room_version.hydra and event.type != "m.room.create" and isinstance(event.room_id, str):
        ids.append("$" + event.room_id[1:])
    return ids


def same_group(a: StateGroupRef | None, b: StateGroupRef | None) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return a is b
