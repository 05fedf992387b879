"""Completing a room joined with partial state ("faster joins").

A join through another server may ask it to leave membership events out of the
state it answers with (``omit_members``), so that joining a room of thousands
returns in the time of a small one.  The room is then usable at once — events are
received and sent, the auth rules take a membership the partial state lacks from
the event's own auth events (``RoomStates.auth_state``) — while federation fetches
the full state as of our join (``federation.membership.partial_state``) and hands
it here:

1. the state and its auth chain are stored as outliers, each checked against its
   own auth events, and the state is checked to be the room's (as a join's is);
2. under the room's lock, once its batches in flight are written, what the full
   state holds and the partial one lacked is added to the room's state since the
   join and to its membership index, and the room stops being partial, in one
   transaction (``storage.partial_state``);
3. ``on_completed`` callbacks hear the room and the members added; requests
   waiting for the full member list (``/members``) go on.

Not done: events received while the state was partial are not checked again
against the full state (Synapse re-checks them); they passed the auth rules with
the memberships they cite (a ban the resident left out is not seen until then).
History is backfilled while the room is partial: its states are full ones, kept
apart from the partial ones (``storage.partial_state``).

spec: data/api/server-server/joins-v2.yaml (omit_members), server-server-api.md#joining-rooms
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from homeserver.events.room_versions import get_room_version
from homeserver.reactor import installed_reactor
from homeserver.rooms.event_path import EventPath
from homeserver.rooms.joined_room import joined_state_map
from homeserver.rooms.remote_events import InvalidRemoteState, RemoteState
from homeserver.storage.events import EventStore
from homeserver.storage.partial_state import PartialStateRoom, PartialStateStore
from homeserver.storage.state import StateStore

logger = logging.getLogger(__name__)

#: How long a request waits for a partial room's full member list at most.
MAX_WAIT_S = 60.0

#: ``(room_id, user IDs whose membership was added)`` once a room has its full state.
CompletionCallback = Callable[[str, list[str]], Awaitable[None]]


class StaleJoinError(Exception):
    """The partial join is no longer ours to complete (we left, or it never landed):
    its record has been removed."""


class PartialStateCompleter:
    def __init__(
        self,
        *,
        path: EventPath,
        events: EventStore,
        state: StateStore,
        store: PartialStateStore,
        reactor: IReactorTime | None = None,
    ) -> None:
        self._reactor: IReactorTime = installed_reactor() if reactor is None else reactor
        self._path = path
        self._events = events
        self._state = state
        self._store = store
        #: Per process: requests of this process waiting for a room's full state.
        self._waiters: dict[str, list[defer.Deferred[None]]] = {}
        self.on_completed: list[CompletionCallback] = []

    async def wait_for_full_state(self, room_id: str) -> None:
        """Returns once ``room_id`` has its full state (at once if it has), or after
        :data:`MAX_WAIT_S` when the fetch is slow (every server it asks is down):
        the caller then answers from the partial state rather than never.  (A
        client that encrypts to that list reaches fewer devices, never more.)"""
        # Waiting first, then asking: a completion during the question wakes it.
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.setdefault(room_id, []).append(waiter)
        try:
            if await self._store.is_partial(room_id):
                timer = self._reactor.callLater(MAX_WAIT_S, _fire, waiter)
                await waiter
                if timer.active():
                    timer.cancel()
                else:
                    logger.warning("%s is still partial after %.0f s", room_id, MAX_WAIT_S)
        finally:
            waiting = self._waiters.get(room_id)
            if waiting is not None and waiter in waiting:
                waiting.remove(waiter)
                if not waiting:
                    del self._waiters[room_id]

    async def complete(self, room: PartialStateRoom, full: RemoteState) -> list[str]:
        """Make ``full`` (the state before our join, with its auth chain) the room's
        state as of the join; the user IDs whose membership it added.  Raises
        :class:`InvalidRemoteState` when ``full`` cannot be the room's state (nothing
        changes: try another server) and :class:`StaleJoinError` when the room is no
        longer partial-joined by us."""
        room_id = room.room_id
        record = await self._events.get_room(room_id)
        join = (await self._events.get_events([room.join_event_id])).get(room.join_event_id)
        if record is None or join is None or join.internal.outlier or join.rejected:
            await self._store.unmark(room_id, room.join_event_id)
            self._wake(room_id)
            raise StaleJoinError(room_id)
        room_version = get_room_version(record.room_version)
        state_map = joined_state_map(room_id, room_version, join, full)
        await self._path.persist_state_events(room_id, [*full.auth_chain, *full.state])
        held = await self._events.get_events(list(state_map.values()))
        for key, event_id in state_map.items():
            if event_id not in held or held[event_id].rejected:
                reason = held[event_id].internal.rejected_reason if event_id in held else None
                raise InvalidRemoteState(f"state event {event_id} for {key}: {reason}")
        async with self._path.room_lock(room_id):
            await self._path.written(room_id)
            groups = await self._events.get_state_groups_after([room.join_event_id])
            join_group = groups.get(room.join_event_id)
            if join_group is None:
                raise InvalidRemoteState("the join has no state group")
            current = await self._store.get(room_id)
            if current is None or current.join_event_id != room.join_event_id:
                raise StaleJoinError(room_id)
            partial = await self._state.get_state_ids(join_group)
            missing = {key: event_id for key, event_id in state_map.items() if key not in partial}
            added = await self._store.complete(
                room_id, record.room_nid, join_group, missing, join_event_id=room.join_event_id
            )
        logger.info(
            "room %s has its full state: %d entries added, %d members",
            room_id,
            len(missing),
            len(added),
        )
        self._wake(room_id)
        for callback in self.on_completed:
            try:
                await callback(room_id, added)
            except Exception:
                logger.exception("a callback on %s's full state failed", room_id)
        return added

    def _wake(self, room_id: str) -> None:
        for waiter in self._waiters.pop(room_id, []):
            _fire(waiter)


def _fire(waiter: defer.Deferred[None]) -> None:
    if not waiter.called:
        waiter.callback(None)
