"""The ``state`` section of one room in ``/sync``.

The spec defines it as the state updates between ``since`` and the *start* of the
timeline (all state up to that start when there is no ``since`` or with
``full_state``); the start is the first event *returned*, after the timeline filter
and history visibility, so a filtered or gapped timeline never loses a state change
that happened before it.

Where the spec is silent (a state event inside the timeline's span that the timeline
filter left out), we do what Synapse does (``_calculate_state``): its change is sent
in ``state`` too, since the client would otherwise never learn of it.  Per state key
the client is sent the value it lacks: the one at the end of the timeline when that
is not in the timeline, else the one at the start when it changed since ``since``.

Work is proportional to what happened: an incremental sync whose timeline covers
every event since ``since`` (not ``limited``, nothing filtered out) reads no state.

spec: client-server-api/_index.md#syncing, #lazy-loading-room-members,
data/api/client-server/sync.yaml (``State``)
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from homeserver.events.event import StateKey
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.timeline import MembershipRow
from homeserver.sync.lazy_members import LazyMembersSent
from homeserver.sync.room_timeline import TimelineBatch

MEMBER = "m.room.member"


class RoomStateSection:
    def __init__(self, state: RoomStateReader, lazy_members: LazyMembersSent) -> None:
        self._state = state
        self._lazy_members = lazy_members

    async def state_ids(
        self,
        row: MembershipRow,
        batch: TimelineBatch,
        *,
        since: int | None,
        up_to: int,
        full_state: bool,
        lazy: LazyMembers | None,
    ) -> dict[StateKey, str]:
        """(type, state_key) → event ID of every state event the section carries
        (before the state filter, which the caller applies)."""
        needs_delta = (
            full_state
            or since is None
            or batch.limited
            or batch.state_dropped_before
            or batch.state_dropped_in_span
        )
        if not needs_delta and lazy is None:
            return {}
        start = (
            await self._state.state_before(batch.events[0])
            if batch.events
            else await self._at_position(row, up_to)
        )
        delta: dict[StateKey, str] = {}
        if needs_delta:
            previous = {} if full_state or since is None else await self._at_position(row, since)
            end = await self._at_position(row, up_to) if batch.state_dropped_in_span else start
            delta = _client_lacks(start, end, previous, {e.event_id for e in batch.events})
        if lazy is None:
            return delta
        return self._lazy_member_state(
            row, batch, start, delta, lazy, full=full_state or since is None, since=since
        )

    def _lazy_member_state(
        self,
        row: MembershipRow,
        batch: TimelineBatch,
        start: Mapping[StateKey, str],
        delta: Mapping[StateKey, str],
        lazy: LazyMembers,
        *,
        full: bool,
        since: int | None,
    ) -> dict[StateKey, str]:
        """What to send when members are lazy-loaded.

        Whole-room syncs (initial, ``full_state``, a new join): all state but
        memberships, plus the membership of each timeline sender and of the syncing
        user as of the timeline's start.  Incremental syncs: every state change the
        client lacks, memberships included — members who joined or left during a gap
        are state changes, as Synapse sends them (sytest "Members from the gap are
        included in gappy incr LL sync", "Old leaves are present in gapped incremental
        syncs") — plus the timeline senders' memberships.  Memberships the device
        already holds are left out unless ``include_redundant_members`` asks.

        spec: client-server-api/_index.md#lazy-loading-room-members
        """
        senders = {e.sender for e in batch.events} | {lazy.user_id}
        wanted = {
            key: event_id
            for key, event_id in delta.items()
            if not full or key[0] != MEMBER or key[1] in senders
        }
        for sender in senders:
            key = (MEMBER, sender)
            if key in start:
                wanted.setdefault(key, start[key])
        if full or since is None or lazy.include_redundant or lazy.device_id is None:
            return wanted
        held = self._lazy_members.held(lazy.user_id, lazy.device_id, row.room_id, since)
        return {
            key: event_id
            for key, event_id in wanted.items()
            if key[0] != MEMBER or held.get(key[1]) != event_id
        }

    async def _at_position(self, row: MembershipRow, position: int) -> Mapping[StateKey, str]:
        return await self._state.state_at_position(row.room_nid, position) or {}


@attrs.frozen
class LazyMembers:
    """Who syncs with ``lazy_load_members``, and whether redundant members are wanted."""

    user_id: str
    device_id: str | None
    include_redundant: bool


def _client_lacks(
    start: Mapping[StateKey, str],
    end: Mapping[StateKey, str],
    previous: Mapping[StateKey, str],
    in_timeline: set[str],
) -> dict[StateKey, str]:
    """Per state key, the event the client needs beside the timeline.

    ``previous``: the state the client has (at ``since``; empty for whole-room
    syncs); ``start``/``end``: at the timeline's start and end.  A state event's ID
    is never reused, so a key whose end value equals its previous one did not change.
    """
    result: dict[StateKey, str] = {}
    for key in start.keys() | end.keys():
        at_start = start.get(key)
        at_end = end.get(key, at_start)
        before = previous.get(key)
        if at_end == before:
            continue
        if at_end is not None and at_end not in in_timeline:
            result[key] = at_end
        elif at_start is not None and at_start != before:
            result[key] = at_start
    return result
