"""The event path's working data: what a batch decides before anything is written.

``RoomView`` is the room as a batch leaves it so far; ``InFlight`` the batches of a
room handed to the store and not yet committed, which the next batch builds on.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
from twisted.internet import defer

from homeserver.events.event import Event, StateKey
from homeserver.events.receipt import ReceiptOutcome
from homeserver.events.room_versions import RoomVersion
from homeserver.storage.events import EventToPersist, RoomBatch, RoomRecord, StateGroupRef


@attrs.frozen
class StateContext:
    """A room state: its group (stored or to be created with the batch) and contents."""

    group: StateGroupRef
    state: Mapping[StateKey, str]


@attrs.frozen
class PathResult:
    """What became of one event of a batch."""

    event_id: str
    event: Event
    #: None when the event was refused before any check (it is not stored).
    outcome: ReceiptOutcome | None
    stream_ordering: int | None = None
    error: str | None = None
    #: Stored before this batch; nothing was done.
    duplicate: bool = False

    @property
    def stored(self) -> bool:
        return self.outcome is not None

    @property
    def visible(self) -> bool:
        """Shown to clients: accepted and part of the timeline (not an outlier)."""
        return (
            self.outcome is not None
            and self.outcome.is_accepted
            and not self.event.internal.outlier
            and not self.duplicate
        )


@attrs.frozen
class Advance:
    """What an accepted event does to the room: its new forward extremities, and its
    new current state (None: unchanged) with the entries that changed."""

    extremities: list[str]
    current: StateContext | None
    changes: Mapping[StateKey, str | None]


@attrs.define
class RoomView:
    """The room as the batch so far leaves it; nothing is written until the end."""

    room: RoomRecord
    room_version: RoomVersion
    current_group: StateGroupRef | None
    current_state: Mapping[StateKey, str]
    extremities: list[str]
    original_extremities: tuple[str, ...]
    #: Entries of the current state changed by the batch (None: removed).
    current_changes: dict[StateKey, str | None] = attrs.Factory(dict)
    current_moved: bool = False
    #: The batch's events decided so far, and the state after each (not outliers).
    decided: dict[str, Event] = attrs.Factory(dict)
    after: dict[str, StateContext] = attrs.Factory(dict)
    items: list[EventToPersist] = attrs.Factory(list)
    #: Earlier batches of the room still being written, which this one builds on.
    in_flight: InFlight | None = None
    #: The batch is backfilled history (no soft-fail check, no extremities, no
    #: current state; negative stream positions).
    backfill: bool = False
    #: Gaps (prev events not held in the graph) the batch's events cite, and those
    #: it closes; stored outliers the batch places that something already cites
    #: (they neither become extremities nor move the current state).
    backward_added: set[str] = attrs.Factory(set)
    backward_removed: set[str] = attrs.Factory(set)
    cited_elsewhere: set[str] = attrs.Factory(set)
    #: Prev events held only as outliers, with the remote's state after each (a
    #: gap in the graph), and the state contexts made of them.
    gaps: Mapping[str, Mapping[StateKey, str]] = attrs.Factory(dict)
    gap_contexts: dict[str, StateContext] = attrs.Factory(dict)
    #: Events stored as outliers that this batch places in the graph.
    replacing: set[str] = attrs.Factory(set)
    #: The room was joined with partial state, not yet completed: a membership the
    #: auth rules need and the state lacks comes from the event's auth events.
    partial: bool = False

    def event(self, event_id: str) -> Event | None:
        """An event of this batch or of one still being written (not the store's)."""
        found = self.decided.get(event_id)
        if found is None and self.in_flight is not None:
            found = self.in_flight.events.get(event_id)
        return found

    def state_after(self, event_id: str) -> StateContext | None:
        found = self.after.get(event_id)
        if found is None and self.in_flight is not None:
            found = self.in_flight.after.get(event_id)
        return found


@attrs.define(eq=False)
class InFlight:
    """A room's batches handed to the store and not yet committed: the next batch is
    decided on top of them rather than waiting (so one room's events can share a
    transaction too).  If one fails, the room waits for the rest to finish and
    starts again from what is stored."""

    extremities: list[str]
    current_group: StateGroupRef | None
    current_state: Mapping[StateKey, str]
    events: dict[str, Event] = attrs.Factory(dict)
    after: dict[str, StateContext] = attrs.Factory(dict)
    batches: int = 0
    last: RoomBatch | None = None
    broken: bool = False
    drained: list[defer.Deferred[None]] = attrs.Factory(list)

    async def wait_until_drained(self) -> None:
        if self.batches:
            waiter: defer.Deferred[None] = defer.Deferred()
            self.drained.append(waiter)
            await waiter
