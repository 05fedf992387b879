"""What a joining server checks in the state another server hands it (the
``send_join`` answer) before it builds on it: pure, no I/O.

The events themselves were checked for format, signatures and hashes by the caller;
here: the state names one event per key, all of this room; its create event is the
room's (v12: the room ID is derived from it) and of the version the join is in;
the join is a join.  Checking each event against its own auth events is the event
path's job (it stores them as outliers).

spec: server-server-api.md#joining-rooms, server-server-api.md#put_matrixfederationv2send_joinroomideventid
"""

from __future__ import annotations

from collections.abc import Sequence

from homeserver.events.event import Event, StateKey
from homeserver.events.room_versions import RoomVersion
from homeserver.rooms.remote_events import InvalidRemoteState, RemoteState

_CREATE: StateKey = ("m.room.create", "")


def joined_state_map(
    room_id: str, room_version: RoomVersion, join_event: Event, remote: RemoteState
) -> dict[StateKey, str]:
    """The state before the join as ``{(type, state_key): event_id}``; raises
    :class:`InvalidRemoteState` when it cannot be the state of ``room_id``."""
    if join_event.room_id != room_id:
        raise InvalidRemoteState("the join event is for another room")
    if join_event.type != "m.room.member" or join_event.membership != "join":
        raise InvalidRemoteState("the join event is not a join")
    if join_event.room_version.identifier != room_version.identifier:
        raise InvalidRemoteState("the join event is of another room version")
    state: dict[StateKey, str] = {}
    for event in remote.state:
        if event.room_id != room_id:
            raise InvalidRemoteState(f"state event {event.event_id} is of another room")
        if not event.is_state():
            raise InvalidRemoteState(f"{event.event_id} in the state is not a state event")
        key = event.state_key_tuple
        if state.get(key, event.event_id) != event.event_id:
            raise InvalidRemoteState(f"the state has two events for {key}")
        state[key] = event.event_id
    for event in remote.auth_chain:
        if event.room_id != room_id:
            raise InvalidRemoteState(f"auth chain event {event.event_id} is of another room")
    create = _create_event(remote.state, state.get(_CREATE))
    if create is None:
        raise InvalidRemoteState("the state has no create event")
    declared = create.content.get("room_version", "1")
    if declared != room_version.identifier:
        raise InvalidRemoteState(
            f"the create event says room version {declared!r}, not {room_version.identifier!r}"
        )
    if room_version.hydra and "!" + create.event_id[1:] != room_id:
        raise InvalidRemoteState("the create event is not the one the room ID names")
    return state


def _create_event(events: Sequence[Event], create_id: str | None) -> Event | None:
    return next((e for e in events if e.event_id == create_id), None)
