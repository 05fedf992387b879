"""Getting what a received batch cites and this server lacks: the event path's
prerequisites, fetched through a :class:`MissingEventSource`.

In this order, as deployed servers do (Synapse's ``_get_missing_events_for_pdu``
and ``_compute_event_context_with_maybe_missing_prevs`` taught the behaviour):

1. missing ``prev_events``: ask once for the events between our forward
   extremities and the events citing the gap (``/get_missing_events``); what comes
   back joins the batch as timeline events;
2. prev events still missing (the gap was too big): each becomes a *gap*: the state
   after it, taken from the remote's answer for the state before it plus the event
   itself when it is a state event, stands in for it when the events citing it get
   their state; it and the events of that state are stored as outliers;
3. missing ``auth_events`` are fetched one by one (``/event``) and stored as outliers.

spec: server-server-api.md#backfilling-and-retrieving-missing-events,
server-server-api.md#checks-performed-on-receipt-of-a-pdu
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import attrs

from homeserver.events.event import Event, StateKey
from homeserver.rooms.event_batch import placed_in_graph
from homeserver.rooms.remote_events import EventsUnavailable, MissingEventSource, RemoteState

logger = logging.getLogger(__name__)

#: Events asked of ``/get_missing_events`` (Synapse asks for 10; a little more
#: closes most gaps of a server that was away briefly).
MISSING_EVENTS_LIMIT = 20
#: Rounds of fetching (each may reveal more that are missing).
_MAX_FETCH_ROUNDS = 10
#: Events fetched for one batch at most (a big room's state at a gap is tens of
#: thousands of members).
_MAX_FETCHED = 50_000
#: Prev events one batch may fill with a remote state (each costs a /state_ids).
_MAX_GAPS = 10

#: Loads the events among the IDs that the path knows (stored or in flight).
KnownEvents = Callable[[Iterable[str]], Awaitable[dict[str, Event]]]


@attrs.define
class Prerequisites:
    """What fetching left: IDs nobody could provide, and the gaps filled by state."""

    unavailable: set[str] = attrs.Factory(set)
    #: Prev events held only as outliers, by ID: the state after each.
    gaps: dict[str, dict[StateKey, str]] = attrs.Factory(dict)
    #: Events stored as outliers that the batch places in the graph.
    replacing: set[str] = attrs.Factory(set)

    def gap_state_ids(self, event: Event) -> set[str]:
        """The events of the gap states ``event`` builds on (decide them first)."""
        return {
            state_id
            for prev in event.prev_event_ids
            for state_id in self.gaps.get(prev, {}).values()
        }


class PrerequisiteFetcher:
    """Fills one batch's ``new`` events (by ID) with what they cite."""

    def __init__(
        self,
        source: MissingEventSource,
        known: KnownEvents,
        *,
        room_id: str,
        extremities: Sequence[str],
        origin: str | None,
        ask_missing_events: bool = True,
    ) -> None:
        self._source = source
        self._ask_missing_events = ask_missing_events
        self._known = known
        self._room_id = room_id
        self._extremities = list(extremities)
        self._origin = origin
        self._fetched = 0
        self._found = Prerequisites()

    async def fetch(self, new: dict[str, Event]) -> Prerequisites:
        found = self._found = Prerequisites()
        asked_for_missing = not self._ask_missing_events
        tried_gaps: set[str] = set()
        missing, prevs = await self._lacking(new, found.gaps)
        for _round in range(_MAX_FETCH_ROUNDS):
            if not missing or self._fetched >= _MAX_FETCHED:
                break
            missing_prevs = (missing & prevs) - tried_gaps
            progressed = False
            if missing_prevs and not asked_for_missing:
                asked_for_missing = True
                progressed = await self._ask_for_missing_events(new, missing_prevs)
            if not progressed:
                for prev_id in sorted(missing_prevs)[:_MAX_GAPS]:
                    tried_gaps.add(prev_id)
                    progressed |= await self._fill_gap(new, prev_id, found.gaps)
                auth_missing = missing - prevs
                if auth_missing:
                    progressed |= await self._fetch_auth_events(new, auth_missing)
            if not progressed:
                break
            missing, prevs = await self._lacking(new, found.gaps)
        found.unavailable = missing
        return found

    async def _lacking(
        self, new: Mapping[str, Event], gaps: Mapping[str, object]
    ) -> tuple[set[str], set[str]]:
        """The events ``new`` cites that this server lacks (a prev event known only
        as an outlier counts as lacking, unless a gap state stands in for it), and
        every prev event cited."""
        prevs = {p for e in new.values() if not e.internal.outlier for p in e.prev_event_ids}
        auths = {a for e in new.values() for a in e.auth_event_ids}
        wanted = (prevs | auths) - set(new)
        known = await self._known(wanted)
        missing = {
            event_id
            for event_id in wanted
            if event_id not in known
            or (event_id in prevs and not placed_in_graph(known[event_id]) and event_id not in gaps)
        }
        return missing, prevs

    async def _ask_for_missing_events(self, new: dict[str, Event], missing_prevs: set[str]) -> bool:
        latest = [
            e
            for e in new.values()
            if not e.internal.outlier and missing_prevs.intersection(e.prev_event_ids)
        ]
        if not latest:
            return False
        try:
            got = await self._source.fetch_missing_events(
                self._room_id,
                earliest=self._extremities,
                latest=[e.event_id for e in latest],
                limit=MISSING_EVENTS_LIMIT,
                min_depth=0,
                origin=self._origin,
            )
        except EventsUnavailable:
            return False
        return bool(await self._add(new, got, outlier=False))

    async def _fill_gap(
        self, new: dict[str, Event], prev_id: str, gaps: dict[str, dict[StateKey, str]]
    ) -> bool:
        """Stand the remote's state for the missing ``prev_id``; False when it
        cannot be had."""
        try:
            remote: RemoteState = await self._source.fetch_state_before(
                self._room_id, prev_id, origin=self._origin
            )
            prev = new.get(prev_id) or (await self._known([prev_id])).get(prev_id)
            if prev is None:
                fetched = await self._source.fetch_events(
                    self._room_id, [prev_id], origin=self._origin
                )
                prev = next((e for e in fetched if e.event_id == prev_id), None)
        except EventsUnavailable:
            return False
        if prev is None or prev.room_id != self._room_id:
            return False
        state = {
            e.state_key_tuple: e.event_id
            for e in remote.state
            if e.is_state() and e.room_id == self._room_id
        }
        if prev.is_state():
            state[prev.state_key_tuple] = prev.event_id
        await self._add(new, [prev, *remote.state, *remote.auth_chain], outlier=True)
        # Only events the batch or the store holds can be state.
        held = set(new) | set(await self._known(set(state.values()) - set(new)))
        gaps[prev_id] = {key: event_id for key, event_id in state.items() if event_id in held}
        logger.info(
            "room %s: prev event %s unavailable, using the state before it from %s",
            self._room_id,
            prev_id,
            self._origin or "a remote server",
        )
        return True

    async def _fetch_auth_events(self, new: dict[str, Event], auth_missing: set[str]) -> bool:
        try:
            fetched = await self._source.fetch_events(
                self._room_id, auth_missing, origin=self._origin
            )
        except EventsUnavailable:
            return False
        return bool(
            await self._add(new, [e for e in fetched if e.event_id in auth_missing], outlier=True)
        )

    async def _add(self, new: dict[str, Event], events: Iterable[Event], *, outlier: bool) -> int:
        """Add the events of this room that are neither in the batch nor known."""
        candidates: dict[str, Event] = {}
        for event in events:
            if event.room_id == self._room_id and event.event_id not in new:
                candidates.setdefault(event.event_id, event)
        known = await self._known(candidates)
        added = 0
        for event_id, event in candidates.items():
            if self._fetched >= _MAX_FETCHED:
                break
            stored = known.get(event_id)
            # A stored outlier arriving with its place in the graph is taken again.
            if stored is not None and (outlier or placed_in_graph(stored)):
                continue
            if outlier:
                event.internal.outlier = True
            elif stored is not None:
                self._found.replacing.add(event_id)
            new[event_id] = event
            self._fetched += 1
            added += 1
        return added
