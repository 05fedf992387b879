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

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager

from twisted.internet import defer
from twisted.python.failure import Failure

from homeserver.events.auth import AuthError, check_auth_rules
from homeserver.events.event import Event, StateKey, StateMap
from homeserver.events.receipt import (
    ReceiptOutcome,
    check_pdu_against_auth_events,
    check_pdu_on_receipt,
)
from homeserver.events.room_versions import get_room_version
from homeserver.rooms.event_batch import (
    auth_ids,
    auth_state_keys,
    in_dependency_order,
    outcome_of,
    placed_in_graph,
    state_diff,
    takes_its_place,
)
from homeserver.rooms.event_path_remote import PrerequisiteFetcher
from homeserver.rooms.event_path_state import RoomStates
from homeserver.rooms.event_path_types import Advance, InFlight, PathResult, RoomView, StateContext
from homeserver.rooms.joined_room import joined_state_map
from homeserver.rooms.remote_events import (
    EventsUnavailable,
    InvalidRemoteState,
    MissingEventSource,
    NoMissingEventSource,
    RemoteState,
)
from homeserver.storage.events import (
    CurrentStateChange,
    EventStore,
    EventToPersist,
    NewStateGroup,
    PersistedEvent,
    RoomBatch,
    RoomExistsError,
    RoomRecord,
)
from homeserver.storage.partial_state import PartialStateRoom, PartialStateStore
from homeserver.storage.state import StateStore
from homeserver.util.linearizer import Linearizer

logger = logging.getLogger(__name__)

__all__ = [
    "EventPath",
    "EventsUnavailable",
    "InvalidRemoteState",
    "MissingEventSource",
    "NoMissingEventSource",
    "PathResult",
    "RemoteState",
    "StateContext",
    "UnknownRoomError",
    "auth_state_keys",
]

#: Awaited for a local event once it has passed the checks, before it is stored, with
#: the state events the auth rules read; raises AuthError to refuse it.
PersistCheck = Callable[[Event, StateMap[Event]], Awaitable[None]]


class UnknownRoomError(Exception):
    pass


class EventPath:
    def __init__(
        self,
        *,
        events: EventStore,
        state: StateStore,
        missing_events: MissingEventSource | None = None,
        partial_state: PartialStateStore | None = None,
    ) -> None:
        self._events = events
        self._state = state
        self._partial_state = partial_state
        self._states = RoomStates(events, state)
        self._missing = missing_events or NoMissingEventSource()
        self._linearizer = Linearizer()
        #: room ID -> its batches being written (per process: the room's writer).
        self._in_flight: dict[str, InFlight] = {}
        #: Called with each visible event's stream position, in order (wakes /sync).
        self.on_new_event: list[Callable[[Event, int], None]] = []
        #: Awaited after each visible state event is stored (derived data such as
        #: directory summaries that the sender may read next).
        self.after_state_change: list[Callable[[Event], Awaitable[None]]] = []

    def use_missing_event_source(self, source: MissingEventSource) -> None:
        """Fetch the events a received event cites but this server lacks from
        ``source`` from now on.  Federation's source is built after the path it
        serves (it reads rooms through handlers built on the path), so it is handed
        over here rather than to the constructor."""
        self._missing = source

    def room_lock(self, room_id: str) -> AbstractAsyncContextManager[None]:
        """Held while a room's events are decided and stored: one batch at a time."""
        return self._linearizer.queue(room_id)

    # --- entry points ------------------------------------------------------------

    async def receive(
        self, room_id: str, events: Sequence[Event], *, origin: str | None = None
    ) -> list[PathResult]:
        """Take events of ``room_id`` from another server (format, signatures and
        hashes already checked), in any order; one result per distinct event.
        ``origin`` (the server that sent them) is asked first for what they cite."""
        async with self.room_lock(room_id):
            room = await self._events.get_room(room_id)
            if room is None or (
                # A room we hold no state of (only an invite to it): not ours to build.
                room.current_state_group is None and room_id not in self._in_flight
            ):
                raise UnknownRoomError(room_id)
            settled, written = await self._receive_locked(room, events, origin)
        results = [*settled, *(await written)]
        await self.announce(results)
        return results

    async def persist_joined_room(
        self,
        room_id: str,
        room_version: str,
        join_event: Event,
        state: RemoteState,
        *,
        partial: PartialStateRoom | None = None,
    ) -> PathResult:
        """Store a room joined through another server (the ``send_join`` answer).

        The room record is created if new; the auth chain and state events are stored
        as outliers, each checked against its own auth events; the join is checked
        against ``state`` (its state before) and stored as a timeline event; the
        room's current state becomes the state after the join, its forward
        extremities ``[join]``, and the membership index gets every member of it.
        Raises :class:`InvalidRemoteState` (nothing stored) when the state or the
        join cannot be accepted: the caller may try another server.

        ``partial``: the resident left membership events out (``members_omitted``):
        the room is recorded as partial before the join is stored, and until its
        state is completed (:mod:`homeserver.rooms.partial_state`) a membership the
        auth rules need but the state lacks is taken from the event's own auth
        events.
        spec: server-server-api.md#joining-rooms, data/api/server-server/joins-v2.yaml
        """
        try:
            version = get_room_version(room_version)
        except KeyError:
            raise InvalidRemoteState(f"unknown room version {room_version!r}") from None
        state_map = joined_state_map(room_id, version, join_event, state)
        async with self.room_lock(room_id):
            known_room = await self._events.get_room(room_id)
            if known_room is not None and known_room.room_version != room_version:
                raise InvalidRemoteState(
                    f"this server holds the room as version {known_room.room_version}"
                )
            # A room new to us is created once everything has passed the checks.
            view = await self._view(known_room or RoomRecord(0, room_id, room_version, None))
            view.partial = partial is not None
            stored = (await self._states.events_by_id(view, [join_event.event_id])).get(
                join_event.event_id
            )
            if stored is not None and not stored.internal.outlier:
                return PathResult(join_event.event_id, stored, outcome_of(stored), duplicate=True)
            outcomes = await self._decide_outliers(view, [*state.auth_chain, *state.state])
            held = await self._states.events_by_id(view, state_map.values())
            for key, event_id in state_map.items():
                if event_id not in held or held[event_id].rejected:
                    reason = held[event_id].internal.rejected_reason if event_id in held else None
                    raise InvalidRemoteState(f"state event {event_id} for {key}: {reason}")
            # The remote's state is the room's from now on, and the join builds on it
            # (the room's own extremities, if any, are history before it).
            before = StateContext(NewStateGroup(None, state_map, state_map), state_map)
            view.current_changes.update(state_diff(view.current_state, state_map))
            view.current_group, view.current_state = before.group, state_map
            view.current_moved = True
            view.extremities = []
            if stored is not None:
                view.replacing.add(join_event.event_id)
            join_event.internal.outlier = False
            # History before the join is what backfill fetches later.
            view.backward_added.update(join_event.prev_event_ids)
            outcome = await self._decide(view, join_event, local=False, context=before)
            if not outcome.is_accepted:
                raise InvalidRemoteState(f"the join is refused: {outcome.reason}")
            outcomes[join_event.event_id] = outcome
            if known_room is None:
                view.room = await self._create_room(room_id, room_version, join_event)
            if partial is not None and self._partial_state is not None:
                await self._partial_state.mark(partial, join_event.origin_server_ts)
            written = self._submit(view, outcomes)
        try:
            results = await written
        except Exception:
            if partial is not None and self._partial_state is not None:
                await self._partial_state.unmark(room_id, partial.join_event_id)
            raise
        if partial is None and self._partial_state is not None:
            # A full join ends what an earlier partial one left (we had left since).
            if await self._partial_state.is_partial(room_id):
                await self._partial_state.unmark(room_id)
        await self.announce(results)
        return next(r for r in results if r.event_id == join_event.event_id)

    async def receive_backfill(
        self, room_id: str, events: Sequence[Event], *, origin: str | None = None
    ) -> list[PathResult]:
        """Store history older than what the room holds (a ``/backfill`` answer):
        each event's state before is the state after its prev events, with the
        remote's state before a prev event this server does not hold standing in for
        it (as for a gap, step 2 of :mod:`event_path_remote`).  Never soft-failed (the
        current state is not history's business), never touching current state or
        forward extremities; negative stream positions, so /sync never sees them as
        new while /messages places them by depth.  Not announced.  An event held as
        an outlier takes its place in the graph.  In a room whose state is partial
        the history's states are full ones (other servers' states before it) and
        are recorded as such, for the completion to leave them alone.
        spec: server-server-api.md#backfilling-and-retrieving-missing-events"""
        async with self.room_lock(room_id):
            room = await self._events.get_room(room_id)
            if room is None or room.current_state_group is None:
                raise UnknownRoomError(room_id)
            settled, written = await self._receive_locked(room, events, origin, backfill=True)
        return [*settled, *(await written)]

    async def persist_outlier(self, room_id: str, room_version: str, event: Event) -> PathResult:
        """Store a membership event about a local user in a room this server is not
        in: an invite received, or a rejection or knock sent through another server.
        It carries its stripped state in ``unsigned`` (``invite_room_state`` /
        ``knock_room_state``) and cannot be checked against a state we do not have
        (its signatures were).  It has no place in the room's graph, yet the user's
        /sync must see it: it gets a stream position and the user's row in the
        membership index, never state nor an extremity.  The room gets a record of
        its own if it is unknown.  spec: server-server-api.md#inviting-to-a-room,
        server-server-api.md#leaving-rooms-rejecting-invites"""
        if event.type != "m.room.member" or event.state_key is None or event.membership is None:
            raise InvalidRemoteState("not a membership event")
        if event.room_id != room_id:
            raise InvalidRemoteState("the event is for another room")
        async with self.room_lock(room_id):
            room = await self._events.get_room(room_id)
            if room is None:
                room = await self._create_room(room_id, room_version, event)
            elif room.room_version != room_version:
                raise InvalidRemoteState(
                    f"this server holds the room as version {room.room_version}"
                )
            view = await self._view(room)
            stored = (await self._states.events_by_id(view, [event.event_id])).get(event.event_id)
            if stored is not None:
                return PathResult(event.event_id, stored, outcome_of(stored), duplicate=True)
            event.internal.outlier = False
            view.decided[event.event_id] = event
            view.items.append(EventToPersist(event, None, out_of_band=True))
            written = self._submit(view, {event.event_id: ReceiptOutcome.ACCEPTED})
        [result] = await written
        # Only the wake-up: the room's derived data (summaries, directory) is about
        # rooms we are in.
        if result.stream_ordering is not None:
            for callback in self.on_new_event:
                callback(result.event, result.stream_ordering)
        return result

    async def persist_state_events(self, room_id: str, events: Sequence[Event]) -> None:
        """Store a state and its auth chain fetched for a room we are in (a partial
        room's full state) as outliers, each checked against its own auth events;
        raises :class:`InvalidRemoteState` (nothing stored) when one cites an auth
        event nobody gave."""
        async with self.room_lock(room_id):
            room = await self._events.get_room(room_id)
            if room is None:
                raise UnknownRoomError(room_id)
            view = await self._view(room)
            outcomes = await self._decide_outliers(view, events)
            written = self._submit(view, outcomes) if view.items else defer.succeed([])
        await written

    async def written(self, room_id: str) -> None:
        """Once the room's batches handed to the store are written (under
        :meth:`room_lock`: then no new one starts)."""
        in_flight = self._in_flight.get(room_id)
        if in_flight is not None:
            await in_flight.wait_until_drained()

    async def _create_room(self, room_id: str, room_version: str, first: Event) -> RoomRecord:
        """The record of a room this server did not know (or another join just made)."""
        try:
            await self._events.create_room(room_id, room_version, first.origin_server_ts)
        except RoomExistsError:
            pass
        room = await self._events.get_room(room_id)
        if room is None or room.room_version != room_version:
            raise InvalidRemoteState(f"the room {room_id} changed while joining it")
        return room

    async def _decide_outliers(
        self, view: RoomView, events: Iterable[Event]
    ) -> dict[str, ReceiptOutcome]:
        """Check events given with a state (its events and their auth chain) against
        their own auth events, to store them as outliers; raises
        :class:`InvalidRemoteState` when one cites an auth event nobody gave."""
        new = {e.event_id: e for e in events if e.room_id == view.room.room_id}
        known = await self._states.events_by_id(view, new)
        outcomes: dict[str, ReceiptOutcome] = {}
        for event in in_dependency_order(e for i, e in new.items() if i not in known):
            event.internal.outlier = True
            missing = await self._missing_prerequisites(view, event, set())
            if missing:
                raise InvalidRemoteState(
                    f"the auth chain lacks {sorted(missing)[:3]} (cited by {event.event_id})"
                )
            outcomes[event.event_id] = await self._decide(view, event, local=False)
        return outcomes

    async def latest_events(self, room: RoomRecord, limit: int) -> list[Event]:
        """The room's forward extremities a new event should cite (under
        :meth:`room_lock`): the most recent ones, by depth then arrival, at most
        ``limit``.  spec: data/api/server-server/definitions/pdu_v3.yaml
        (prev_events: "the most recent events in the room")"""
        view = await self._view(room)
        events = await self._states.events_by_id(view, view.extremities)
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
        return await self._states.state_after_all(view, prev_event_ids)

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
            await before_persist(event, await self._states.auth_state(view, event, context.state))
        written = self._submit(view, {event.event_id: outcome})
        return written.addCallback(lambda results: results[0])

    async def submit_new_room(
        self, room: RoomRecord, events: Sequence[Event]
    ) -> defer.Deferred[list[PathResult]]:
        """Check a new room's first events (``m.room.create`` first, each citing the
        one before) and hand them to the store: all of them, or none (AuthError)."""
        view = RoomView(room, get_room_version(room.room_version), None, {}, [], ())
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
        self,
        room: RoomRecord,
        events: Sequence[Event],
        origin: str | None = None,
        *,
        backfill: bool = False,
    ) -> tuple[list[PathResult], defer.Deferred[list[PathResult]]]:
        """The results settled now (duplicates, refusals), and the ones of the events
        handed to the store, once written."""
        view = await self._view(room)
        view.backfill = backfill
        incoming: dict[str, Event] = {}
        for event in events:
            if event.room_id == room.room_id:
                incoming.setdefault(event.event_id, event)
        stored = await self._states.events_by_id(view, incoming)
        duplicates = [
            PathResult(event_id, stored[event_id], outcome_of(stored[event_id]), duplicate=True)
            for event_id in incoming
            if event_id in stored and not takes_its_place(stored[event_id], incoming[event_id])
        ]
        new = {
            event_id: e
            for event_id, e in incoming.items()
            if event_id not in stored or takes_its_place(stored[event_id], e)
        }
        fetcher = PrerequisiteFetcher(
            self._missing,
            functools.partial(self._states.events_by_id, view),
            room_id=room.room_id,
            extremities=view.extremities,
            origin=origin,
            # History's prev events are older still: their state, not the events
            # between them and our extremities, is what is missing.
            ask_missing_events=not backfill,
        )
        prerequisites = await fetcher.fetch(new)
        unavailable = prerequisites.unavailable
        view.gaps = prerequisites.gaps
        view.replacing = prerequisites.replacing | {
            event_id for event_id in new if event_id in stored
        }
        # Events something already cites (the edge of backfilled history, a gap):
        # they close it rather than extend the room.
        view.cited_elsewhere = await self._events.get_backward_extremities(
            room.room_nid, [i for i, e in new.items() if not e.internal.outlier]
        )

        outcomes: dict[str, ReceiptOutcome] = {}
        refused: list[PathResult] = []
        extra_cites = {e.event_id: prerequisites.gap_state_ids(e) for e in new.values()}
        for event in in_dependency_order(new.values(), extra_cites):
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

    async def _missing_prerequisites(
        self, view: RoomView, event: Event, unavailable: set[str]
    ) -> set[str]:
        """The events ``event`` cites that are neither stored nor decided in the batch
        (prev events must have a place in the room's state, so not outliers)."""
        cited = set(event.auth_event_ids)
        if not event.internal.outlier:
            cited.update(event.prev_event_ids)
        missing = {c for c in cited if c in unavailable}
        known = await self._states.events_by_id(view, cited - missing)
        for event_id in cited - missing:
            found = known.get(event_id)
            if found is None:
                missing.add(event_id)
            elif (
                not event.internal.outlier
                and event_id in event.prev_event_ids
                and not placed_in_graph(found)
                and event_id not in view.gaps
            ):
                missing.add(event_id)
        return missing

    async def _decide(
        self,
        view: RoomView,
        event: Event,
        *,
        local: bool,
        context: StateContext | None = None,
    ) -> ReceiptOutcome:
        """Check ``event`` and record in ``view`` what storing it changes."""
        room_version = view.room_version
        if event.internal.outlier:
            auth_events = await self._states.events_by_id(view, auth_ids(room_version, event))
            outcome = check_pdu_against_auth_events(room_version, event, auth_events)
            if outcome.is_rejected:
                event.internal.rejected_reason = outcome.reason
            view.decided[event.event_id] = event
            view.items.append(EventToPersist(event, None))
            return outcome

        if context is None:
            context = await self._states.state_after_all(view, event.prev_event_ids)
        state_before = await self._states.auth_state(view, event, context.state)
        current_state = None
        if not view.backfill and not self._states.same_group(context.group, view.current_group):
            # (History filled in later is never soft-failed: the current state is
            # not its business.)
            current_state = await self._states.auth_state(view, event, view.current_state)
        auth_events = await self._states.events_by_id(view, auth_ids(room_version, event))
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
        view.backward_added.update(p for p in event.prev_event_ids if p in view.gaps)
        if event.event_id in view.cited_elsewhere:
            view.backward_removed.add(event.event_id)
        advance = None
        if outcome.is_accepted and event.event_id in view.cited_elsewhere and not view.backfill:
            # A late event something already builds on: it ends the extremities it
            # cites but is none itself, and the state after it is already in the
            # state of what cites it.
            view.extremities = [x for x in view.extremities if x not in event.prev_event_ids]
        elif outcome.is_accepted and not view.backfill:
            try:
                advance = await self._plan_advance(view, event, context, after)
            except EventsUnavailable:
                del view.after[event.event_id], view.decided[event.event_id]
                raise
        view.items.append(
            EventToPersist(
                event,
                context.group,
                after.group,
                replaces_outlier=event.event_id in view.replacing,
            )
        )
        if advance is not None:
            view.extremities = advance.extremities
            if advance.current is not None and not self._states.same_group(
                advance.current.group, view.current_group
            ):
                view.current_group = advance.current.group
                view.current_state = advance.current.state
                view.current_changes.update(advance.changes)
                view.current_moved = True
        return outcome

    async def _plan_advance(
        self, view: RoomView, event: Event, before: StateContext, after: StateContext
    ) -> Advance:
        """Forward extremities and current state once ``event`` is accepted."""
        prevs = set(event.prev_event_ids)
        builds_on_all = all(extremity in prevs for extremity in view.extremities)
        # Every event the path stores has its prev_events, so nothing stored can cite
        # a newly arriving one: it is an extremity.  (Backfill, which stores events
        # whose prev_events are missing, will have to remember those citations.)
        extremities = [x for x in view.extremities if x not in prevs]
        extremities.append(event.event_id)
        if builds_on_all:
            if self._states.same_group(before.group, view.current_group):
                # The usual case: one event on top of the current state.
                changes: dict[StateKey, str | None] = (
                    {event.state_key_tuple: event.event_id} if after is not before else {}
                )
            else:
                changes = state_diff(view.current_state, after.state)
            return Advance(extremities, after, changes)
        # The room has forked: its state is the resolution across the extremities.
        resolved = await self._states.state_after_all(view, extremities)
        if resolved.state == view.current_state:
            return Advance(extremities, None, {})
        changes = state_diff(view.current_state, resolved.state)
        group = resolved.group
        if isinstance(group, NewStateGroup) and view.current_group is not None:
            # A delta on the current state: usually the smallest one.
            group = NewStateGroup(view.current_group, changes, resolved.state)
        return Advance(extremities, StateContext(group, resolved.state), changes)

    # --- state -------------------------------------------------------------------

    async def _view(self, room: RoomRecord) -> RoomView:
        room_version = get_room_version(room.room_version)
        in_flight = self._in_flight.get(room.room_id)
        if in_flight is not None and in_flight.broken:
            # What it was built on never landed: start again from the store.
            await in_flight.wait_until_drained()
            in_flight = self._in_flight.get(room.room_id)
        if in_flight is not None:
            extremities = in_flight.extremities
            return RoomView(
                room,
                room_version,
                in_flight.current_group,
                in_flight.current_state,
                list(extremities),
                tuple(extremities),
                in_flight=in_flight,
                partial=await self._is_partial(room.room_id),
            )
        extremities = await self._events.get_forward_extremities(room.room_nid)
        group = room.current_state_group
        state = await self._state.get_state_ids(group) if group is not None else {}
        view = RoomView(room, room_version, group, state, list(extremities), tuple(extremities))
        view.partial = await self._is_partial(room.room_id)
        return view

    async def _is_partial(self, room_id: str) -> bool:
        return self._partial_state is not None and await self._partial_state.is_partial(room_id)

    # --- storing -----------------------------------------------------------------

    def _submit(
        self, view: RoomView, outcomes: Mapping[str, ReceiptOutcome]
    ) -> defer.Deferred[list[PathResult]]:
        """Hand the batch to the store; the room's next batch builds on it at once."""
        room_id = view.room.room_id
        in_flight = view.in_flight
        if in_flight is None:
            in_flight = InFlight(view.extremities, view.current_group, view.current_state)
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
            backfilled=view.backfill,
            history_while_partial=view.backfill and view.partial,
            backward_added=sorted(view.backward_added - view.backward_removed),
            backward_removed=sorted(view.backward_removed),
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
