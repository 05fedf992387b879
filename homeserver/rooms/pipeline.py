"""Local events: build them, then hand them to the one event path.

Sends in one room are serialised by the path's per-room lock, so each local event
cites the previous one and forward extremities stay few.  What an event is built
on (its state before) comes from the path, which checks and stores it exactly as
it would an event from another server (``homeserver.rooms.event_path``).

spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu (the same auth
rules apply to our own events), client-server-api/_index.md#creation
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs

from homeserver.clock import Clock
from homeserver.events.auth import AuthError, check_auth_rules
from homeserver.events.errors import InvalidEventError
from homeserver.events.event import Event, InternalMetadata, StateKey
from homeserver.events.hashing import reference_hashes
from homeserver.events.room_versions import EventFormat, RoomVersion, get_room_version
from homeserver.events.signing import SigningKey
from homeserver.rooms.builder import MAX_PREV_EVENTS, EventDraft, RoomPosition, build_local_event
from homeserver.rooms.event_path import (
    EventPath,
    MissingEventSource,
    PersistCheck,
    StateContext,
    UnknownRoomError,
    auth_state_keys,
)
from homeserver.storage.events import EventStore, RoomExistsError, RoomRecord
from homeserver.storage.partial_state import PartialStateStore
from homeserver.storage.state import StateStore

#: Tries at a room ID nobody has before giving up (collisions need identical requests).
_MAX_ROOM_ID_ATTEMPTS = 50


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
        missing_events: MissingEventSource | None = None,
        partial_state: PartialStateStore | None = None,
    ) -> None:
        self._server_name = server_name
        self._signing_key = signing_key
        self._clock = clock
        self._events = events
        #: The one path every event is stored by (federation hands it received ones).
        self.path = EventPath(
            events=events,
            state=state,
            missing_events=missing_events,
            partial_state=partial_state,
        )

    @property
    def on_new_event(self) -> list[Callable[[Event, int], None]]:
        """Called with each visible event's stream position (wakes /sync etc.)."""
        return self.path.on_new_event

    @property
    def after_state_change(self) -> list[Callable[[Event], Awaitable[None]]]:
        """Awaited after each visible state event, before the sender gets an answer
        (derived data such as directory summaries that the sender may read next)."""
        return self.path.after_state_change

    async def create_room(
        self,
        room_version_id: str,
        creator: str,
        create_content: Mapping[str, Any],
        initial_events: Sequence[InitialEvent] = (),
        *,
        before_persist: Callable[[str], Awaitable[None]] | None = None,
        checked_after: Sequence[InitialEvent] = (),
    ) -> list[SentEvent]:
        """Create a room: its ``m.room.create`` event, then ``initial_events`` in order.

        Every event is built and auth-checked in memory against the state the
        previous ones make before anything is stored; the events are then persisted
        in one transaction.  A request the auth rules refuse part-way therefore
        leaves nothing behind.  Raises AuthError / InvalidEventError for the create
        event itself, :class:`InitialEventRefused` for a later one.
        ``before_persist`` gets the room ID once the room is reserved and every event
        has passed, before they are stored (e.g. to claim an alias the events name).
        ``checked_after``: events the caller sends itself once the room exists (invites
        of other servers' users, which those servers must countersign first), checked
        here as if they followed ``initial_events`` but never stored, so that a
        request whose later events the rules would refuse leaves no room either
        (:class:`InitialEventRefused` counts them after ``initial_events``).

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
            events = self._plan_initial_events(
                create, [*initial_events, *checked_after], origin_server_ts
            )
            # Each planned event builds on the ones before it alone: dropping the
            # ones checked but sent later changes nothing in the rest.
            del events[1 + len(initial_events) :]
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
        room = RoomRecord(room_nid, create.room_id, room_version_id, None)
        async with self.path.room_lock(create.room_id):
            written = await self.path.submit_new_room(room, events)
        results = await written
        await self.path.announce(results)
        sent = []
        for result in results:
            assert result.stream_ordering is not None
            sent.append(SentEvent(result.event, result.stream_ordering))
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
                auth_keys = auth_state_keys(
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
        """Build, check and persist a local event in an existing room.

        Raises :class:`AuthError` when the auth rules refuse it (nothing is stored),
        :class:`UnknownRoomError` for a room this server does not have.
        ``before_persist`` may refuse the event too (raising AuthError), given the
        built event and the state events the auth rules read for it.
        """
        async with self.path.room_lock(draft.room_id):
            room, context, event = await self._build_locked(draft, internal)
            written = await self.path.submit_local(room, event, context, before_persist)
        # Decided and queued: the room's next event need not wait for this write.
        result = await written
        await self.path.announce([result])
        assert result.stream_ordering is not None
        return SentEvent(event, result.stream_ordering)

    async def build(self, draft: EventDraft) -> Event:
        """Build and sign a local event on the room's current extremities and check it
        against the auth rules, without storing it (for an event another server must
        countersign first: an invite of a remote user).  Store it later with
        :meth:`send_built`.  Raises AuthError, InvalidEventError, UnknownRoomError.

        spec: server-server-api.md#inviting-to-a-room
        """
        async with self.path.room_lock(draft.room_id):
            room, context, event = await self._build_locked(draft, None)
        room_version = get_room_version(room.room_version)
        auth_state = await self._auth_state(room_version, draft, context.state)
        check_auth_rules(room_version, event, auth_state)
        return event

    async def send_built(self, event: Event) -> SentEvent:
        """Store a local event made by :meth:`build` (possibly countersigned since):
        checked again on the state its ``prev_events`` give, which the room may have
        moved past meanwhile (the path then merges the fork).  Raises AuthError."""
        async with self.path.room_lock(event.room_id):
            room = await self._events.get_room(event.room_id)
            if room is None:
                raise UnknownRoomError(event.room_id)
            context = await self.path.state_context(room, event.prev_event_ids)
            written = await self.path.submit_local(room, event, context)
        result = await written
        await self.path.announce([result])
        assert result.stream_ordering is not None
        return SentEvent(event, result.stream_ordering)

    async def _build_locked(
        self, draft: EventDraft, internal: InternalMetadata | None
    ) -> tuple[RoomRecord, StateContext, Event]:
        """Build ``draft`` on the room's extremities (under the room lock): the room,
        the state before the event, and the signed event."""
        room = await self._events.get_room(draft.room_id)
        if room is None:
            raise UnknownRoomError(draft.room_id)
        prev_events = {
            event.event_id: event for event in await self.path.latest_events(room, MAX_PREV_EVENTS)
        }
        if not prev_events:
            raise UnknownRoomError(f"{room.room_id} has no forward extremities")
        context = await self.path.state_context(room, list(prev_events))
        room_version = get_room_version(room.room_version)
        position = RoomPosition(
            prev_event_ids=list(prev_events),
            max_prev_depth=max(e.depth for e in prev_events.values()),
            state_before=context.state,
        )
        if room_version.event_format is EventFormat.V1:
            # v1/v2 references carry the hashes of the events they name.
            auth_state = await self._auth_state(room_version, draft, context.state)
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
        return room, context, event

    async def _auth_state(
        self, room_version: RoomVersion, draft: EventDraft, state: Mapping[StateKey, str]
    ) -> dict[StateKey, Event]:
        """The events of ``state`` the auth rules read for the event ``draft`` makes."""
        keys = auth_state_keys(
            room_version, draft.event_type, draft.sender, draft.state_key, draft.content
        )
        wanted = {key: state[key] for key in keys if key in state}
        loaded = await self._events.get_events(list(wanted.values()))
        return {key: loaded[event_id] for key, event_id in wanted.items() if event_id in loaded}


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
