"""One path for every event: local sends, new rooms, and events from other servers.

A room's batch is taken event by event, each after the events of the batch it
cites:

1. **prerequisites** — its ``prev_events`` and ``auth_events`` must be known:
   stored, earlier in the batch, or fetched through a :class:`MissingEventSource`
   (federation's job; until it exists nothing can be fetched, and the event is
   refused without being stored);
2. **state before** — the state after each of its ``prev_events``, resolved with
   the room version's algorithm when they differ;
3. **checks** (``homeserver.events.receipt``) — against its auth events and the
   state before it, else *rejected* (stored, never state, never shown); against the
   room's current state, else *soft-failed* (stored and part of later state
   resolution, but never shown nor an extremity).  A local event must pass all of
   them: otherwise :class:`AuthError` and nothing is stored;
4. **extremities and current state** — an accepted event replaces the extremities
   it cites; when it builds on all of them, the room's state is the state after it,
   otherwise the extremities have forked and the current state is the resolution
   of the states after each.

Nothing is written until the whole batch is decided; then it is one transaction
(shared with other rooms' batches by the store's group commit) and its visible
events are announced in stream order.

spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu,
server-server-api.md#rejection, server-server-api.md#soft-failure,
rooms/fragments/v2-state-res.md
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import attrs
from twisted.internet import defer
from twisted.python.failure import Failure

from homeserver.events.auth import AuthError, auth_types_for_event, check_auth_rules
from homeserver.events.event import Event, StateKey, StateMap
from homeserver.events.receipt import (
    ReceiptOutcome,
    check_pdu_against_auth_events,
    check_pdu_on_receipt,
)
from homeserver.events.room_versions import RoomVersion, get_room_version
from homeserver.events.state_res import MissingEventsError, resolve_state
from homeserver.storage.events import (
    CurrentStateChange,
    EventStore,
    EventToPersist,
    NewStateGroup,
    PersistedEvent,
    RoomBatch,
    RoomRecord,
    StateGroupRef,
)
from homeserver.storage.state import StateStore
from homeserver.util.linearizer import Linearizer

logger = logging.getLogger(__name__)

#: Rounds of asking for missing events (each may reveal more that are missing).
_MAX_FETCH_ROUNDS = 10
#: Events fetched for one batch at most.
_MAX_FETCHED = 1000
#: Rounds of loading events state resolution asks for (auth chains, layer by layer).
_MAX_RESOLVE_ROUNDS = 50

#: Awaited for a local event once it has passed the checks, before it is stored, with
#: the state events the auth rules read; raises AuthError to refuse it.
PersistCheck = Callable[[Event, StateMap[Event]], Awaitable[None]]


class UnknownRoomError(Exception):
    pass


class EventsUnavailable(Exception):
    """Events a batch needs could not be had (not stored, and nobody to fetch them from)."""

    def __init__(self, event_ids: Iterable[str]) -> None:
        self.event_ids = frozenset(event_ids)
        super().__init__(f"events unavailable: {sorted(self.event_ids)[:5]}")


class MissingEventSource(Protocol):
    """Where the path gets events a batch cites but this server does not have."""

    async def fetch_events(self, room_id: str, event_ids: Collection[str]) -> Sequence[Event]:
        """Whichever of ``event_ids`` (of ``room_id``) can be had, already checked for
        format, signatures and hashes; raises :class:`EventsUnavailable` when none
        can."""
        ...


class NoMissingEventSource:
    """Before federation there is no other server to ask: every fetch is refused."""

    async def fetch_events(self, room_id: str, event_ids: Collection[str]) -> Sequence[Event]:
        raise EventsUnavailable(event_ids)


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
class _Advance:
    """What an accepted event does to the room: its new forward extremities, and its
    new current state (None: unchanged) with the entries that changed."""

    extremities: list[str]
    current: StateContext | None
    changes: Mapping[StateKey, str | None]


@attrs.define
class _RoomView:
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
    in_flight: _InFlight | None = None

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
class _InFlight:
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


class EventPath:
    def __init__(
        self,
        *,
        events: EventStore,
        state: StateStore,
        missing_events: MissingEventSource | None = None,
    ) -> None:
        self._events = events
        self._state = state
        self._missing = missing_events or NoMissingEventSource()
        self._linearizer = Linearizer()
        #: room ID -> its batches being written (per process: the room's writer).
        self._in_flight: dict[str, _InFlight] = {}
        #: Called with each visible event's stream position, in order (wakes /sync).
        self.on_new_event: list[Callable[[Event, int], None]] = []
        #: Awaited after each visible state event is stored (derived data such as
        #: directory summaries that the sender may read next).
        self.after_state_change: list[Callable[[Event], Awaitable[None]]] = []

    def room_lock(self, room_id: str) -> AbstractAsyncContextManager[None]:
        """Held while a room's events are decided and stored: one batch at a time."""
        return self._linearizer.queue(room_id)

    # --- entry points ------------------------------------------------------------

    async def receive(self, room_id: str, events: Sequence[Event]) -> list[PathResult]:
        """Take events of ``room_id`` from another server (format, signatures and
        hashes already checked), in any order; one result per distinct event."""
        async with self.room_lock(room_id):
            room = await self._events.get_room(room_id)
            if room is None:
                raise UnknownRoomError(room_id)
            settled, written = await self._receive_locked(room, events)
        results = [*settled, *(await written)]
        await self.announce(results)
        return results

    async def latest_events(self, room: RoomRecord, limit: int) -> list[Event]:
        """The room's forward extremities a new event should cite (under
        :meth:`room_lock`): the most recent ones, by depth then arrival, at most
        ``limit``.  spec: data/api/server-server/definitions/pdu_v3.yaml
        (prev_events: "the most recent events in the room")"""
        view = await self._view(room)
        events = await self._events_by_id(view, view.extremities)
        missing = [e for e in view.extremities if e not in events]
        if missing:
            raise EventsUnavailable(missing)
        # Events not yet written have no stream position: they are the newest.
        newest_first = sorted(
            events.values(),
            key=lambda event: (event.depth, event.internal.stream_ordering or 2**63),
            reverse=True,
        )
        return newest_first[:limit]

    async def state_context(self, room: RoomRecord, prev_event_ids: Sequence[str]) -> StateContext:
        """The state before an event citing ``prev_event_ids`` (under :meth:`room_lock`):
        what a local event is built on, and what the checks will use for it."""
        view = await self._view(room)
        return await self._state_after_all(view, prev_event_ids)

    async def submit_local(
        self,
        room: RoomRecord,
        event: Event,
        context: StateContext,
        before_persist: PersistCheck | None = None,
    ) -> defer.Deferred[PathResult]:
        """Check an event this server built on ``context`` and hand it to the store
        (under :meth:`room_lock`).  Await the returned Deferred after releasing the
        lock: it fires once the event is committed; then announce it.

        Raises AuthError if any check fails; nothing is stored then.
        """
        view = await self._view(room)
        outcome = await self._decide(view, event, local=True, context=context)
        if before_persist is not None:
            await before_persist(event, await self._auth_state(view, event, context.state))
        written = self._submit(view, {event.event_id: outcome})
        return written.addCallback(lambda results: results[0])

    async def submit_new_room(
        self, room: RoomRecord, events: Sequence[Event]
    ) -> defer.Deferred[list[PathResult]]:
        """Check a new room's first events (``m.room.create`` first, each citing the
        one before) and hand them to the store: all of them, or none (AuthError)."""
        view = _RoomView(room, get_room_version(room.room_version), None, {}, [], ())
        outcomes = {}
        for event in events:
            outcomes[event.event_id] = await self._decide(view, event, local=True)
        return self._submit(view, outcomes)

    async def announce(self, results: Sequence[PathResult]) -> None:
        """Tell listeners about the visible events among ``results``, in order."""
        visible = [r for r in results if r.visible and r.stream_ordering is not None]
        for result in visible:
            assert result.stream_ordering is not None
            for callback in self.on_new_event:
                callback(result.event, result.stream_ordering)
        for result in visible:
            if result.event.is_state():
                for after in self.after_state_change:
                    await after(result.event)

    # --- deciding ------------------------------------------------------------------

    async def _receive_locked(
        self, room: RoomRecord, events: Sequence[Event]
    ) -> tuple[list[PathResult], defer.Deferred[list[PathResult]]]:
        """The results settled now (duplicates, refusals), and the ones of the events
        handed to the store, once written."""
        view = await self._view(room)
        incoming: dict[str, Event] = {}
        for event in events:
            if event.room_id == room.room_id:
                incoming.setdefault(event.event_id, event)
        stored = await self._events_by_id(view, incoming)
        duplicates = [
            PathResult(event_id, stored[event_id], _outcome_of(stored[event_id]), duplicate=True)
            for event_id in incoming
            if event_id in stored
        ]
        new = {event_id: e for event_id, e in incoming.items() if event_id not in stored}
        unavailable = await self._fetch_prerequisites(view, new)

        outcomes: dict[str, ReceiptOutcome] = {}
        refused: list[PathResult] = []
        for event in _in_dependency_order(new.values()):
            missing = await self._missing_prerequisites(view, event, unavailable)
            if missing:
                refused.append(
                    PathResult(
                        event.event_id,
                        event,
                        None,
                        error=f"cites events this server does not have: {sorted(missing)[:5]}",
                    )
                )
                # Whatever cites it is unavailable too.
                unavailable.add(event.event_id)
                continue
            try:
                outcomes[event.event_id] = await self._decide(view, event, local=False)
            except EventsUnavailable as gone:
                refused.append(PathResult(event.event_id, event, None, error=str(gone)))
                unavailable.add(event.event_id)
        written = self._submit(view, outcomes) if view.items else defer.succeed([])
        return [*duplicates, *refused], written

    async def _fetch_prerequisites(self, view: _RoomView, new: dict[str, Event]) -> set[str]:
        """Fetch what the batch cites and nobody has, adding it to ``new`` (events
        needed only as auth events become outliers).  Returns the IDs that stay
        unavailable."""
        fetched_total = 0
        for _round in range(_MAX_FETCH_ROUNDS):
            missing, prevs = await self._lacking(view, new)
            if not missing or fetched_total >= _MAX_FETCHED:
                return missing
            try:
                fetched = await self._missing.fetch_events(view.room.room_id, missing)
            except EventsUnavailable:
                return missing
            useful = [
                e for e in fetched if e.event_id in missing and e.room_id == view.room.room_id
            ]
            if not useful:
                return missing
            for event in useful[: _MAX_FETCHED - fetched_total]:
                if event.event_id not in prevs:
                    event.internal.outlier = True
                new[event.event_id] = event
                fetched_total += 1
        return (await self._lacking(view, new))[0]

    async def _lacking(
        self, view: _RoomView, new: Mapping[str, Event]
    ) -> tuple[set[str], set[str]]:
        """The events ``new`` cites that this server lacks (a prev event known only
        as an outlier counts as lacking), and every prev event cited."""
        prevs = {p for e in new.values() if not e.internal.outlier for p in e.prev_event_ids}
        auths = {a for e in new.values() for a in e.auth_event_ids}
        wanted = (prevs | auths) - set(new)
        known = await self._events_by_id(view, wanted)
        missing = {
            event_id
            for event_id in wanted
            if event_id not in known or (event_id in prevs and known[event_id].internal.outlier)
        }
        return missing, prevs

    async def _missing_prerequisites(
        self, view: _RoomView, event: Event, unavailable: set[str]
    ) -> set[str]:
        """The events ``event`` cites that are neither stored nor decided in the batch
        (prev events must have a place in the room's state, so not outliers)."""
        cited = set(event.auth_event_ids)
        if not event.internal.outlier:
            cited.update(event.prev_event_ids)
        missing = {c for c in cited if c in unavailable}
        known = await self._events_by_id(view, cited - missing)
        for event_id in cited - missing:
            found = known.get(event_id)
            if found is None:
                missing.add(event_id)
            elif event_id in event.prev_event_ids and found.internal.outlier:
                missing.add(event_id)
        return missing

    async def _decide(
        self,
        view: _RoomView,
        event: Event,
        *,
        local: bool,
        context: StateContext | None = None,
    ) -> ReceiptOutcome:
        """Check ``event`` and record in ``view`` what storing it changes."""
        room_version = view.room_version
        if event.internal.outlier:
            auth_events = await self._events_by_id(view, _auth_ids(room_version, event))
            outcome = check_pdu_against_auth_events(room_version, event, auth_events)
            if outcome.is_rejected:
                event.internal.rejected_reason = outcome.reason
            view.decided[event.event_id] = event
            view.items.append(EventToPersist(event, None))
            return outcome

        if context is None:
            context = await self._state_after_all(view, event.prev_event_ids)
        state_before = await self._auth_state(view, event, context.state)
        current_state = None
        if not self._same_group(context.group, view.current_group):
            current_state = await self._auth_state(view, event, view.current_state)
        auth_events = await self._events_by_id(view, _auth_ids(room_version, event))
        outcome = check_pdu_on_receipt(
            room_version, event, auth_events, state_before, current_state
        )
        if local and not outcome.is_accepted:
            # Refused: run the state checks again, alone, so the sender gets the auth
            # rule's own words rather than the receipt step's summary.
            check_auth_rules(room_version, event, state_before)
            if current_state is not None:
                check_auth_rules(room_version, event, current_state)
            raise AuthError(outcome.reason or "refused")
        if outcome.is_rejected:
            event.internal.rejected_reason = outcome.reason
        elif outcome.is_soft_failed:
            event.internal.soft_failed = True

        after = context
        if event.is_state() and not outcome.is_rejected:
            key = event.state_key_tuple
            event.internal.replaces_state = context.state.get(key)
            state_after = {**context.state, key: event.event_id}
            after = StateContext(
                NewStateGroup(context.group, {key: event.event_id}, state_after), state_after
            )
        view.after[event.event_id] = after
        view.decided[event.event_id] = event
        advance = None
        if outcome.is_accepted:
            try:
                advance = await self._plan_advance(view, event, context, after)
            except EventsUnavailable:
                del view.after[event.event_id], view.decided[event.event_id]
                raise
        view.items.append(EventToPersist(event, context.group, after.group))
        if advance is not None:
            view.extremities = advance.extremities
            if advance.current is not None and not self._same_group(
                advance.current.group, view.current_group
            ):
                view.current_group = advance.current.group
                view.current_state = advance.current.state
                view.current_changes.update(advance.changes)
                view.current_moved = True
        return outcome

    async def _plan_advance(
        self, view: _RoomView, event: Event, before: StateContext, after: StateContext
    ) -> _Advance:
        """Forward extremities and current state once ``event`` is accepted."""
        prevs = set(event.prev_event_ids)
        builds_on_all = all(extremity in prevs for extremity in view.extremities)
        # Every event the path stores has its prev_events, so nothing stored can cite
        # a newly arriving one: it is an extremity.  (Backfill, which stores events
        # whose prev_events are missing, will have to remember those citations.)
        extremities = [x for x in view.extremities if x not in prevs]
        extremities.append(event.event_id)
        if builds_on_all:
            if self._same_group(before.group, view.current_group):
                # The usual case: one event on top of the current state.
                changes: dict[StateKey, str | None] = (
                    {event.state_key_tuple: event.event_id} if after is not before else {}
                )
            else:
                changes = _diff(view.current_state, after.state)
            return _Advance(extremities, after, changes)
        # The room has forked: its state is the resolution across the extremities.
        resolved = await self._state_after_all(view, extremities)
        if resolved.state == view.current_state:
            return _Advance(extremities, None, {})
        changes = _diff(view.current_state, resolved.state)
        group = resolved.group
        if isinstance(group, NewStateGroup) and view.current_group is not None:
            # A delta on the current state: usually the smallest one.
            group = NewStateGroup(view.current_group, changes, resolved.state)
        return _Advance(extremities, StateContext(group, resolved.state), changes)

    # --- state -------------------------------------------------------------------

    async def _view(self, room: RoomRecord) -> _RoomView:
        room_version = get_room_version(room.room_version)
        in_flight = self._in_flight.get(room.room_id)
        if in_flight is not None and in_flight.broken:
            # What it was built on never landed: start again from the store.
            await in_flight.wait_until_drained()
            in_flight = self._in_flight.get(room.room_id)
        if in_flight is not None:
            extremities = in_flight.extremities
            return _RoomView(
                room,
                room_version,
                in_flight.current_group,
                in_flight.current_state,
                list(extremities),
                tuple(extremities),
                in_flight=in_flight,
            )
        extremities = await self._events.get_forward_extremities(room.room_nid)
        group = room.current_state_group
        state = await self._state.get_state_ids(group) if group is not None else {}
        return _RoomView(room, room_version, group, state, list(extremities), tuple(extremities))

    async def _state_after_all(self, view: _RoomView, event_ids: Sequence[str]) -> StateContext:
        """The state after all of ``event_ids``: resolved when they differ; the empty
        state for none (only a create event has no prev_events)."""
        contexts: list[StateContext] = []
        stored_ids = []
        for event_id in dict.fromkeys(event_ids):
            decided = view.state_after(event_id)
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
            if not any(self._same_group(context.group, d.group) for d in distinct):
                distinct.append(context)
        if len(distinct) == 1:
            return distinct[0]
        resolved = await self._resolve(view, [d.state for d in distinct])
        base = distinct[0]
        return StateContext(
            NewStateGroup(base.group, _diff(base.state, resolved), resolved), resolved
        )

    async def _resolve(
        self, view: _RoomView, state_sets: Sequence[Mapping[StateKey, str]]
    ) -> dict[StateKey, str]:
        wanted = {event_id for state in state_sets for event_id in state.values()}
        event_map = await self._events_by_id(view, wanted)
        for _round in range(_MAX_RESOLVE_ROUNDS):
            try:
                return resolve_state(view.room_version, state_sets, event_map)
            except MissingEventsError as missing:
                fetched = await self._events_by_id(view, missing.event_ids)
                if not fetched:
                    raise EventsUnavailable(missing.event_ids) from None
                event_map.update(fetched)
        raise EventsUnavailable(())

    async def _auth_state(
        self, view: _RoomView, event: Event, state: Mapping[StateKey, str]
    ) -> dict[StateKey, Event]:
        """The events of ``state`` the auth rules read for ``event``: its few keys,
        never the whole room state."""
        keys = auth_state_keys(
            view.room_version, event.type, event.sender, event.state_key, event.content
        )
        wanted = {key: state[key] for key in keys if key in state}
        loaded = await self._events_by_id(view, wanted.values())
        return {key: loaded[event_id] for key, event_id in wanted.items() if event_id in loaded}

    async def _events_by_id(self, view: _RoomView, event_ids: Iterable[str]) -> dict[str, Event]:
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

    # --- storing -----------------------------------------------------------------

    def _submit(
        self, view: _RoomView, outcomes: Mapping[str, ReceiptOutcome]
    ) -> defer.Deferred[list[PathResult]]:
        """Hand the batch to the store; the room's next batch builds on it at once."""
        room_id = view.room.room_id
        in_flight = view.in_flight
        if in_flight is None:
            in_flight = _InFlight(view.extremities, view.current_group, view.current_state)
            self._in_flight[room_id] = in_flight
        extremities = set(view.extremities)
        original = set(view.original_extremities)
        batch = RoomBatch(
            view.room.room_nid,
            view.items,
            extremities_removed=sorted(original - extremities),
            extremities_added=sorted(extremities - original),
            current_state=(
                CurrentStateChange(view.current_group, view.current_changes)
                if view.current_moved and view.current_group is not None
                else None
            ),
            after=in_flight.last,
        )
        in_flight.extremities = list(view.extremities)
        in_flight.current_group = view.current_group
        in_flight.current_state = view.current_state
        in_flight.events.update(view.decided)
        in_flight.after.update(view.after)
        in_flight.batches += 1
        in_flight.last = batch

        def finished(outcome: object) -> object:
            for item in batch.events:
                in_flight.events.pop(item.event.event_id, None)
                in_flight.after.pop(item.event.event_id, None)
            in_flight.batches -= 1
            if isinstance(outcome, Failure):
                in_flight.broken = True
            if in_flight.batches == 0:
                if self._in_flight.get(room_id) is in_flight:
                    del self._in_flight[room_id]
                waiters, in_flight.drained = in_flight.drained, []
                for waiter in waiters:
                    waiter.callback(None)
            return outcome

        def results(persisted: list[PersistedEvent]) -> list[PathResult]:
            return [
                PathResult(
                    item.event.event_id,
                    item.event,
                    outcomes[item.event.event_id],
                    stream_ordering=result.stream_ordering,
                )
                for item, result in zip(batch.events, persisted, strict=True)
            ]

        written = defer.ensureDeferred(self._events.persist_events(batch))
        written.addBoth(finished)
        return written.addCallback(results)

    def _same_group(self, a: StateGroupRef | None, b: StateGroupRef | None) -> bool:
        """Whether two references name one state group (a new group, once written,
        is the same as its stored ID)."""
        return _same_group(self._events.stored_group(a), self._events.stored_group(b))


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


def _auth_ids(room_version: RoomVersion, event: Event) -> list[str]:
    """The events the step-4 check reads: the cited auth events, and in v12 rooms the
    create event, whose ID the room ID carries."""
    ids = list(event.auth_event_ids)
    if room_version.hydra and event.type != "m.room.create" and isinstance(event.room_id, str):
        ids.append("$" + event.room_id[1:])
    return ids


def _same_group(a: StateGroupRef | None, b: StateGroupRef | None) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return a is b


def _diff(old: Mapping[StateKey, str], new: Mapping[StateKey, str]) -> dict[StateKey, str | None]:
    changes: dict[StateKey, str | None] = {
        key: event_id for key, event_id in new.items() if old.get(key) != event_id
    }
    changes.update({key: None for key in old if key not in new})
    return changes


def _outcome_of(event: Event) -> ReceiptOutcome:
    if event.internal.rejected_reason is not None:
        return ReceiptOutcome.rejected(event.internal.rejected_reason)
    if event.internal.soft_failed:
        return ReceiptOutcome.soft_failed("current state")
    return ReceiptOutcome.ACCEPTED


def _in_dependency_order(events: Iterable[Event]) -> list[Event]:
    """``events`` with every event after the ones it cites among them (prev and auth
    events), otherwise by depth then arrival; events in a citation cycle (only a
    broken or malicious server makes one) come last, where their checks fail."""
    pending = list(events)
    ids = {e.event_id for e in pending}
    cites = {
        e.event_id: {
            c for c in (*e.prev_event_ids, *e.auth_event_ids) if c in ids and c != e.event_id
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
