"""Which state events an event cites as its ``auth_events``, and checking that it did.

spec: server-server-api.md#auth-events-selection; rooms/fragments/v1-auth-rules.md
rule 2, rooms/v12.md#authorisation-rules rules 2-3 ("Considering the event's
auth_events")
"""

from __future__ import annotations

from collections.abc import Mapping

from homeserver.events.auth.errors import AuthError
from homeserver.events.auth.power_levels import CREATE_KEY, POWER_LEVELS_KEY
from homeserver.events.event import Event, StateKey
from homeserver.events.room_versions import RoomVersion


def auth_types_for_event(
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, object],
) -> set[StateKey]:
    """The ``(type, state_key)`` pairs an event of this shape selects as auth events.

    Malformed content selects less, never raises: the auth rules then deny the event.
    """
    if event_type == "m.room.create":
        return set()  # the create event has no auth events
    selected: set[StateKey] = {POWER_LEVELS_KEY, ("m.room.member", sender)}
    if not room_version.hydra:
        # rooms/v12.md: the room ID implies the create event; it MUST NOT be selected.
        selected.add(CREATE_KEY)
    if event_type != "m.room.member" or not isinstance(content, Mapping):
        return selected

    if isinstance(state_key, str):
        selected.add(("m.room.member", state_key))
    membership = content.get("membership")
    if membership in ("join", "invite", "knock"):
        selected.add(("m.room.join_rules", ""))
    if membership == "invite":
        invite = content.get("third_party_invite")
        signed = invite.get("signed") if isinstance(invite, dict) else None
        token = signed.get("token") if isinstance(signed, dict) else None
        if isinstance(token, str):
            selected.add(("m.room.third_party_invite", token))
    elif membership == "join" and room_version.restricted_join_rule:
        authoriser = content.get("join_authorised_via_users_server")
        if isinstance(authoriser, str):
            selected.add(("m.room.member", authoriser))
    return selected


def check_auth_events_selection(
    room_version: RoomVersion, event: Event, auth_events: Mapping[str, Event]
) -> None:
    """Check the event's own ``auth_events`` list; raise :class:`AuthError` if bad.

    ``auth_events`` maps event ID to event and must hold every ID the event cites
    (extra entries are ignored).  The rules: each cited event exists, is a state event
    in the same room and was not rejected; no ``(type, state_key)`` is cited twice;
    nothing is cited that :func:`auth_types_for_event` would not select; before v12
    the create event is cited, in v12 it is not.

    Never raises anything but :class:`AuthError`, whatever the events contain.
    """
    try:
        _check_selection(room_version, event, auth_events)
    except AuthError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise AuthError(f"malformed event: {exc!r}") from exc


def _check_selection(
    room_version: RoomVersion, event: Event, auth_events: Mapping[str, Event]
) -> None:
    content = event.content
    allowed = auth_types_for_event(
        room_version,
        event.type,
        event.sender,
        event.state_key,
        content if isinstance(content, dict) else {},
    )
    room_id = event.room_id
    seen: set[StateKey] = set()
    for auth_id in event.auth_event_ids:
        auth_event = auth_events.get(auth_id) if isinstance(auth_id, str) else None
        if auth_event is None:
            raise AuthError(f"auth event {auth_id} is not available")
        if not auth_event.is_state() or not isinstance(auth_event.state_key, str):
            raise AuthError(f"auth event {auth_id} is not a state event")
        key = auth_event.state_key_tuple
        if key in seen:
            raise AuthError(f"auth events cite {key} more than once")
        seen.add(key)
        if key not in allowed:
            if key == CREATE_KEY:
                raise AuthError("auth events must not cite the create event in this room version")
            raise AuthError(f"auth event {auth_id} {key} is not one the rules select")
        if auth_event.rejected:
            raise AuthError(f"auth event {auth_id} was rejected")
        if auth_event.room_id != room_id:
            raise AuthError(f"auth event {auth_id} is from another room")
    if CREATE_KEY in allowed and CREATE_KEY not in seen:
        raise AuthError("auth events do not include the create event")
