"""The ``timeline`` section of one room in ``/sync``: the latest events the filter and
history visibility let through, at most ``limit`` of them.

The filter is applied while reading, not after: raw events are read newest first in
batches until ``limit`` matching events are found or the range is exhausted, so a
filtered timeline with enough matching events holds exactly ``limit`` of them.  The
number of batches is bounded (as Synapse bounds it) so a filter that matches almost
nothing cannot make one sync read a room's whole history; the timeline is then
``limited`` and the client paginates with ``prev_batch``.

spec: client-server-api/_index.md#syncing, #filtering, data/api/client-server/sync.yaml
(``Timeline``: ``limited``, ``prev_batch``)
"""

from __future__ import annotations

import attrs

from homeserver.events.event import Event
from homeserver.filtering.model import RoomEventFilter
from homeserver.rooms.visibility import HistoryVisibilityFilter
from homeserver.storage.timeline import MembershipRow, TimelineStore

#: Batches read per room before giving up on filling the timeline (Synapse: 5).
MAX_BATCHES = 5
#: Smallest batch after the first; later batches read twice the limit (Synapse's
#: "filtering factor" of 2), since the first one showed that the filter drops events.
MIN_BATCH = 10


@attrs.define
class TimelineBatch:
    #: The events returned, oldest first.
    events: list[Event]
    #: Matching events exist before the first returned one (or may: see MAX_BATCHES).
    limited: bool
    #: Events position just before the first returned event (``prev_batch``).
    prev_batch: int
    #: A state event inside the timeline's span (after its first event) was read but
    #: not returned (filtered out or hidden): its change must reach the client through
    #: the ``state`` section instead.
    state_dropped_in_span: bool = False
    #: A state event between ``since`` and the timeline's first event was read but not
    #: returned (only possible when the timeline is not ``limited``).
    state_dropped_before: bool = False


async def load_timeline(
    timeline: TimelineStore,
    visibility: HistoryVisibilityFilter,
    user_id: str,
    row: MembershipRow,
    *,
    after: int | None,
    up_to: int,
    limit: int,
    timeline_filter: RoomEventFilter,
    ignored: frozenset[str],
) -> TimelineBatch:
    """The timeline of events in ``(after, up_to]`` of ``row``'s room."""
    if limit <= 0:
        # ``limit: 0``: no events; limited if there are any the client is not given.
        any_event = await timeline.get_room_events(
            row.room_nid,
            after=after,
            up_to=up_to,
            direction="b",
            limit=1,
            out_of_band=row.event_id,
        )
        return TimelineBatch([], bool(any_event), up_to)
    matching: list[Event] = []  # newest first
    examined_state: list[Event] = []  # state events read but not returned
    cursor = up_to
    batch_size = limit + 1  # unfiltered, the first batch is the only one
    exhausted = False
    for _ in range(MAX_BATCHES):
        raw = await timeline.get_room_events(
            row.room_nid,
            after=after,
            up_to=cursor,
            direction="b",
            limit=batch_size,
            out_of_band=row.event_id,
        )
        if raw:
            # ``up_to`` is inclusive: the next batch starts below the oldest read.
            cursor = (raw[-1].internal.stream_ordering or 0) - 1
            visible = await visibility.filter(
                user_id, list(reversed(raw)), current=row, ignored_users=ignored
            )
            # The filter's copies: an erased sender's event may come back redacted.
            kept = {
                e.event_id: e
                for e in visible
                if timeline_filter.allows(e.type, e.sender, e.room_id, e.content)
            }
            for event in raw:
                if event.event_id in kept:
                    matching.append(kept[event.event_id])
                elif event.is_state():
                    examined_state.append(event)
        if len(raw) < batch_size:
            exhausted = True
            break
        if len(matching) > limit:
            break
        batch_size = max(limit * 2, MIN_BATCH) + 1
    limited = len(matching) > limit or not exhausted
    events = matching[:limit]
    events.reverse()
    if not events:
        # Without events the timeline "starts" at ``up_to``: all of it is before.
        return TimelineBatch([], limited, up_to, state_dropped_before=bool(examined_state))
    start = events[0].internal.stream_ordering or 0
    return TimelineBatch(
        events,
        limited,
        max(start - 1, 0),
        state_dropped_in_span=any(
            (e.internal.stream_ordering or 0) > start for e in examined_state
        ),
        state_dropped_before=any((e.internal.stream_ordering or 0) < start for e in examined_state),
    )
