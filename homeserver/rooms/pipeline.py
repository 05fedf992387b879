"""The local event pipeline: build, check, persist, notify — one room at a time.

Sends in one room are serialised by a per-room linearizer, so each local event
points at the previous one and forward extremities stay few.  When the room has
forked (events from federation), the state before the new event is the resolution
of the states after each extremity.

spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu (the same auth
rules apply to our own events), rooms/fragments/v2-state-res.md
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs

from homeserver.clock import Clock
from homeserver.events.auth import AuthError, auth_types_for_event, check_auth_rules
from homeserver.events.errors import InvalidEventError
from homeserver.events.event import Event, InternalMetadata, StateKey, StateMap
from homeserver.events.hashing import reference_hashes
from homeserver.events.room_versions import EventFormat, RoomVersion, get_room_version
from homeserver.events.signing import SigningKey
from homeserver.events.state_res import MissingEventsError, resolve_state
from homeserver.rooms.builder import MAX_PREV_EVENTS, EventDraft, RoomPosition, build_local_event
from homeserver.storage.events import EventStore, EventToPersist, RoomExistsError, RoomRecord
from homeserver.storage.state import StateStore
from homeserver.util.linearizer import Linearizer

#: An extra check on a built event and its auth events; raises AuthError to refuse.
PersistCheck = Callable[[Event, StateMap[Event]], Awaitable[None]]

#: Tries at a room ID nobody has before giving up (collisions need identical requests).
_MAX_ROOM_ID_ATTEMPTS = 50

#: How many rounds of fetching missing events state resolution may ask for.
_MAX_FETCH_ROUNDS = 20


class UnknownRoomError(Exception):
    pass


@attrs.frozen
class SentEvent:
    event: Event
    stream_ordering: int


@attrs.frozen
class InitialEvent:
    """One of the events a new room starts with, after ``m.room.create``."""

    event_type: str
    sender: str
    content: dict[str, Any]
    state_key: str | None = None


class InitialEventRefused(Exception):
    """A new room's ``initial_events[index]`` is invalid or refused by the auth rules;
    ``cause`` is the InvalidEventError or AuthError.  Nothing was stored."""

    def __init__(self, index: int, initial: InitialEvent, cause: Exception) -> None:
        super().__init__(f"{initial.event_type} refused: {cause}")
        self.index = index
        self.initial = initial
        self.cause = cause


class EventPipeline:
    def __init__(
        self,
        *,
        server_name: str,
        signing_key: SigningKey,
        clock: Clock,
        events: EventStore,
        state: StateStore,
    ) -> None:
        self._server_name = server_name
        self._signing_key = signing_key
        self._clock = clock
        self._events = events
        self._state = state
        self._linearizer = Linearizer()
        #: Called with each persisted event's stream position (wakes /sync etc.).
        self.on_new_event: list[Callable[[Event, int], None]] = []
        #: Awaited after each persisted state event, before the sender gets an answer
        #: (derived data such as directory summaries that the sender may read next).
        self.after_state_change: list[Callable[[Event], Awaitable[None]]] = []

    async def create_room(
        self,
        room_version_id: str,
        creator: str,
        create_content: Mapping[str, Any],
        initial_events: Sequence[InitialEvent] = (),
        *,
        before_persist: Callable[[str], Awaitable[None]] | None = None,
    ) -> list[SentEvent]:
        """Create a room: its ``m.room.create`` event, then ``initial_events`` in order.

        Every event is built and auth-checked in memory against the state the
        previous ones make before anything is stored; the events are then persisted
        in one transaction.  A request the auth rules refuse part-way therefore
        leaves nothing behind.  Raises AuthError / InvalidEventError for the create
        event itself, :class:`InitialEventRefused` for a later one.
        ``before_persist`` gets the room ID once the room is reserved and every event
        has passed, before they are stored (e.g. to claim an alias the events name).

        Before v12 the room ID is random with our server name; from v12 it is derived
        from the create event itself.  spec: client-server-api/_index.md#creation,
        rooms/v12.md
        """
        room_version = get_room_version(room_version_id)
        content = {**create_content, "room_version": room_version_id}
        if not room_version.implicit_room_creator:
            content["creator"] = creator
        origin_server_ts = self._clock.time_msec()
        for _attempt in range(_MAX_ROOM_ID_ATTEMPTS):
            room_id = "" if room_version.hydra else f"!{_random_localpart()}:{self._server_name}"
            create = build_local_event(
                room_version,
                EventDraft(room_id, "m.room.create", creator, content, state_key=""),
                RoomPosition(prev_event_ids=[], max_prev_depth=0, state_before={}),
                server_name=self._server_name,
                signing_key=self._signing_key,
                origin_server_ts=origin_server_ts,
            )
            check_auth_rules(room_version, create, {})
            events = self._plan_initial_events(create, initial_events, origin_server_ts)
            try:
                room_nid = await self._events.create_room(
                    create.room_id, room_version_id, origin_server_ts
                )
                break
            except RoomExistsError:
                # v12 room IDs derive from the create event: the same creator making
                # the same room in the same millisecond gets the same ID.  Another
                # timestamp gives another room.
                origin_server_ts += 1
        else:
            raise RuntimeError("could not find a free room ID")
        if before_persist is not None:
            await before_persist(create.room_id)
        empty = await self._state.store_state_group(room_nid, {})
        persisted = await self._events.persist_events(
            room_nid,
            [EventToPersist(event, empty) for event in events],
            chained=True,
            advance_current_state=True,
        )
        sent = []
        for event, result in zip(events, persisted, strict=True):
            assert result.stream_ordering is not None
            sent.append(SentEvent(event, result.stream_ordering))
            for callback in self.on_new_event:
                callback(event, result.stream_ordering)
        for event in events:
            if event.is_state():
                for after in self.after_state_change:
                    await after(event)
        return sent

    def _plan_initial_events(
        self, create: Event, initial_events: Sequence[InitialEvent], origin_server_ts: int
    ) -> list[Event]:
        """``create`` and the events after it, each built on the one before and
        checked against the state they make (nothing is stored)."""
        room_version = create.room_version
        state: dict[StateKey, Event] = {create.state_key_tuple: create}
        events = [create]
        # v1/v2 references carry reference hashes; every event referenced is in here.
        hashes = _reference_hashes_of(room_version, [create])
        for index, initial in enumerate(initial_events):
            previous = events[-1]
            draft = EventDraft(
                create.room_id,
                initial.event_type,
                initial.sender,
                initial.content,
                state_key=initial.state_key,
            )
            try:
                event = build_local_event(
                    room_version,
                    draft,
                    RoomPosition(
                        prev_event_ids=[previous.event_id],
                        max_prev_depth=previous.depth,
                        state_before={key: e.event_id for key, e in state.items()},
                        reference_hashes=hashes,
                    ),
                    server_name=self._server_name,
                    signing_key=self._signing_key,
                    origin_server_ts=origin_server_ts,
                )
                auth_keys = _auth_state_keys(
                    room_version, event.type, event.sender, event.state_key, event.content
                )
                check_auth_rules(
                    room_version, event, {key: state[key] for key in auth_keys if key in state}
                )
            except (AuthError, InvalidEventError) as refused:
                raise InitialEventRefused(index, initial, refused) from None
            if event.is_state():
                replaced = state.get(event.state_key_tuple)
                event.internal.replaces_state = None if replaced is None else replaced.event_id
                state[event.state_key_tuple] = event
            events.append(event)
            hashes.update(_reference_hashes_of(room_version, [event]))
        return events

    async def send(
        self,
        draft: EventDraft,
        *,
        internal: InternalMetadata | None = None,
        before_persist: PersistCheck | None = None,
    ) -> SentEvent:
        """Build, auth-check and persist a local event in an existing room.

        Raises :class:`AuthError` when the auth rules refuse it (nothing is stored),
        :class:`UnknownRoomError` for a room this server does not have.
        ``before_persist`` may refuse the event too (raising AuthError), given the
        built event and the auth events it was checked against.
        """
        async with self._linearizer.queue(draft.room_id):
            room = await self._events.get_room(draft.room_id)
            if room is None:
                raise UnknownRoomError(draft.room_id)
            position, state_group, prev_events = await self._position(room)
            room_version = get_room_version(room.room_version)
            # Loaded before building: v1/v2 events carry their auth events' hashes.
            auth_state = await self._auth_state(room_version, draft, position.state_before)
            if room_version.event_format is EventFormat.V1:
                position = attrs.evolve(
                    position,
                    reference_hashes=_reference_hashes_of(
                        room_version, [*prev_events.values(), *auth_state.values()]
                    ),
                )
            event = build_local_event(
                room_version,
                draft,
                position,
                server_name=self._server_name,
                signing_key=self._signing_key,
                origin_server_ts=self._clock.time_msec(),
                internal=internal,
            )
            check_auth_rules(room_version, event, auth_state)
            if before_persist is not None:
                await before_persist(event, auth_state)
            if event.is_state():
                event.internal.replaces_state = position.state_before.get(event.state_key_tuple)
            [persisted] = await self._events.persist_events(
                room.room_nid, [EventToPersist(event, state_group)], advance_current_state=True
            )
        assert persisted.stream_ordering is not None
        for callback in self.on_new_event:
            callback(event, persisted.stream_ordering)
        if event.is_state():
            for after in self.after_state_change:
                await after(event)
        return SentEvent(event, persisted.stream_ordering)

    async def _position(self, room: RoomRecord) -> tuple[RoomPosition, int, Mapping[str, Event]]:
        """The extremities to follow, the state group of the state before, and the
        extremity events themselves."""
        extremities = await self._events.get_forward_extremities(room.room_nid)
        if not extremities:
            raise UnknownRoomError(f"{room.room_id} has no forward extremities")
        # The most recent extremities (by depth, then arrival) when there are more than
        # an event may reference; the state before the event is theirs alone.
        # spec: data/api/server-server/definitions/pdu_v3.yaml (prev_events: "the most
        # recent events in the room")
        newest_first = sorted(
            (await self._events.get_events(extremities)).values(),
            key=lambda event: (event.depth, event.internal.stream_ordering or 0),
            reverse=True,
        )[:MAX_PREV_EVENTS]
        prev_events = {event.event_id: event for event in newest_first}
        extremities = list(prev_events)
        groups = await self._events.get_state_groups_after(extremities)
        distinct = sorted(set(groups.values()))
        if len(distinct) == 1:
            group = distinct[0]
            state = await self._state.get_state_ids(group)
        else:
            state = await self._resolve(room, distinct)
            group = await self._state.store_state_group(
                room.room_nid, state, base_group=distinct[0]
            )
        return (
            RoomPosition(
                prev_event_ids=extremities,
                max_prev_depth=max(e.depth for e in prev_events.values()),
                state_before=state,
            ),
            group,
            prev_events,
        )

    async def _resolve(self, room: RoomRecord, groups: Sequence[int]) -> dict[StateKey, str]:
        state_sets = [await self._state.get_state_ids(group) for group in groups]
        wanted = {event_id for state in state_sets for event_id in state.values()}
        event_map = dict(await self._events.get_events(list(wanted)))
        room_version = get_room_version(room.room_version)
        for _ in range(_MAX_FETCH_ROUNDS):
            try:
                return resolve_state(room_version, state_sets, event_map)
            except MissingEventsError as missing:
                fetched = await self._events.get_events(list(missing.event_ids))
                if not fetched:
                    raise
                event_map.update(fetched)
        raise RuntimeError(f"state resolution in {room.room_id} kept missing events")

    async def _auth_state(
        self, room_version: RoomVersion, draft: EventDraft, state: Mapping[StateKey, str]
    ) -> dict[StateKey, Event]:
        """The events of ``state`` the auth rules read for the event ``draft`` makes."""
        keys = _auth_state_keys(
            room_version, draft.event_type, draft.sender, draft.state_key, draft.content
        )
        wanted = {key: state[key] for key in keys if key in state}
        loaded = await self._events.get_events(list(wanted.values()))
        return {key: loaded[event_id] for key, event_id in wanted.items() if event_id in loaded}


def _auth_state_keys(
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, Any],
) -> set[StateKey]:
    """The state the auth rules read for an event: its auth event types, plus the
    create event (which v12 leaves out of ``auth_events`` but the rules still read)."""
    keys = auth_types_for_event(room_version, event_type, sender, state_key, content)
    keys.add(("m.room.create", ""))
    return keys


def _reference_hashes_of(
    room_version: RoomVersion, events: Sequence[Event]
) -> dict[str, dict[str, str]]:
    """Event ID -> reference hashes, for the v1/v2 event format's ``[id, hashes]``
    references (empty in later versions, which reference by ID alone).

    spec: data/api/server-server/definitions/pdu_v1.yaml
    """
    if room_version.event_format is not EventFormat.V1:
        return {}
    return {event.event_id: reference_hashes(event.pdu, room_version) for event in events}


def _random_localpart() -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(18))


__all__ = ["AuthError", "EventPipeline", "SentEvent", "UnknownRoomError"]
