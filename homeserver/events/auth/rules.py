"""The authorization rules: is this event allowed given this state?

One function, :func:`check_auth_rules`, for every room version; behaviour that differs
between versions is asked of the :class:`RoomVersion` flags.  Rule numbers in comments
are those of rooms/v12.md unless said otherwise (earlier versions number them
differently but in the same order).

spec: server-server-api.md#authorisation-rules, rooms/fragments/v1-auth-rules.md,
rooms/fragments/v3-auth-rules.md, rooms/fragments/v8-auth-rules.md,
rooms/v6.md, rooms/v7.md, rooms/v10.md, rooms/v11.md, rooms/v12.md#authorisation-rules
"""

from __future__ import annotations

from homeserver.events.auth.errors import AuthError
from homeserver.events.auth.ids import domain_of, is_valid_user_id
from homeserver.events.auth.membership import check_member_event, membership_in
from homeserver.events.auth.power_level_changes import check_power_levels_event
from homeserver.events.auth.power_levels import (
    CREATE_KEY,
    POWER_LEVELS_KEY,
    PowerLevels,
    get_room_creators,
)
from homeserver.events.event import Event, StateMap
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, EventFormat, RoomVersion


def check_auth_rules(room_version: RoomVersion, event: Event, auth_events: StateMap[Event]) -> None:
    """Raise :class:`AuthError` unless ``event`` is allowed by the state ``auth_events``.

    ``auth_events`` maps ``(type, state_key)`` to events: the event's own auth events,
    the state before it, or the current state (the receipt checks use all three).  It
    may be a whole room state; only the entries the rules need are looked at.  In v12
    the caller includes the create event even though events do not cite it.

    The rules about the event's own ``auth_events`` *list* (duplicates, selection,
    rejected entries) are :func:`~homeserver.events.auth.selection.check_auth_events_selection`.

    Never raises anything but :class:`AuthError`, whatever the event contains.
    """
    try:
        _check(room_version, event, auth_events)
    except AuthError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # Validation upstream should make this unreachable; if it is not, a malformed
        # event is denied rather than crashing the caller (state resolution, /send).
        raise AuthError(f"malformed event: {exc!r}") from exc


def _check(room_version: RoomVersion, event: Event, auth_events: StateMap[Event]) -> None:
    event_type = event.type
    if event_type == "m.room.create":
        _check_create(room_version, event)
        return

    create_event = _check_room_and_create(room_version, event, auth_events)
    sender = event.sender
    if not isinstance(sender, str):
        raise AuthError("sender is not a string")

    # Rule 4 (v12): rooms created with m.federate=false stay on the creator's server.
    create_content = create_event.content
    if (
        isinstance(create_content, dict)
        and create_content.get("m.federate", True) is False
        and domain_of(sender) != domain_of(create_event.sender)
    ):
        raise AuthError("room is not federated and sender is on another server")

    # v1-v5 rule 4: m.room.aliases is governed by the server named in its state_key.
    if room_version.special_case_aliases_auth and event_type == "m.room.aliases":
        state_key = event.state_key
        if state_key is None:
            raise AuthError("m.room.aliases has no state_key")
        if domain_of(sender) != state_key:
            raise AuthError("m.room.aliases state_key is not the sender's server")
        return

    creators = get_room_creators(room_version, create_event)
    levels = PowerLevels(room_version, auth_events.get(POWER_LEVELS_KEY), creators)

    # Rule 5: membership changes have their own rules and stop here.
    if event_type == "m.room.member":
        check_member_event(room_version, event, auth_events, levels, create_event)
        return

    # Rule 6: everything else needs the sender to be in the room.
    if membership_in(auth_events, sender) != "join":
        raise AuthError("sender is not joined to the room")

    sender_level = levels.user_level(sender)
    # Rule 7: inviting by third-party ID needs the invite level, and nothing else.
    if event_type == "m.room.third_party_invite":
        if sender_level >= levels.named_level("invite"):
            return
        raise AuthError("sender's power level is below the invite level")

    # Rule 8: the event type's required power level.
    required = levels.send_level(event_type, event.is_state())
    if required > sender_level:
        raise AuthError(
            f"sender's power level {sender_level} is below the {required} needed for {event_type}"
        )

    # Rule 9: state keyed by a user ID belongs to that user.
    state_key = event.state_key
    if isinstance(state_key, str) and state_key.startswith("@") and state_key != sender:
        raise AuthError("state_key is another user's ID")

    # Rule 10.
    if event_type == "m.room.power_levels":
        check_power_levels_event(room_version, event, auth_events, sender_level, creators)
        return

    # v1-v2 rule 11: redactions are authorised here; from v3 they always pass auth and
    # are checked when applied (rooms/fragments/v3-handling-redactions.md).  v1/v2 are
    # exactly the versions whose event IDs carry a domain, which this rule relies on.
    if event_type == "m.room.redaction" and room_version.event_format is EventFormat.V1:
        if sender_level >= levels.named_level("redact"):
            return
        redacts = event.redacts
        if redacts is not None and domain_of(redacts) == domain_of(event.event_id):
            return
        raise AuthError("sender may not redact events from other servers")


def _check_create(room_version: RoomVersion, event: Event) -> None:
    """Rule 1: the create event."""
    pdu = event.pdu
    if pdu.get("prev_events"):
        raise AuthError("create event has prev_events")
    if room_version.hydra:
        # v12: the room ID is derived from the create event, so it cannot carry one.
        if "room_id" in pdu:
            raise AuthError("create event has a room_id")
    else:
        room_id = pdu.get("room_id")
        sender = event.sender
        if (
            not isinstance(room_id, str)
            or not isinstance(sender, str)
            or domain_of(room_id) != domain_of(sender)
        ):
            raise AuthError("create event's room_id is not on the sender's server")
    content = event.content
    if not isinstance(content, dict):
        raise AuthError("create event content is not an object")
    if "room_version" in content:
        version = content["room_version"]
        if not isinstance(version, str) or version not in KNOWN_ROOM_VERSIONS:
            raise AuthError(f"unknown room_version {version!r}")
    if not room_version.implicit_room_creator and "creator" not in content:
        raise AuthError("create event has no creator")
    if room_version.hydra and "additional_creators" in content:
        additional = content["additional_creators"]
        if not isinstance(additional, list) or not all(map(is_valid_user_id, additional)):
            raise AuthError("additional_creators is not a list of valid user IDs")


def _check_room_and_create(
    room_version: RoomVersion, event: Event, auth_events: StateMap[Event]
) -> Event:
    """The room's create event, after checking the event belongs to its room.

    Pre-v12 rule 2.4 ("no m.room.create among the entries") and v12 rule 2 (the room
    ID must name an accepted create event).
    """
    create_event = auth_events.get(CREATE_KEY)
    if create_event is None:
        raise AuthError("no m.room.create event in the auth events")
    room_id = event.room_id
    if room_version.hydra:
        if create_event.rejected:
            raise AuthError("the room's create event was rejected")
        if not isinstance(room_id, str) or room_id[1:] != create_event.event_id[1:]:
            raise AuthError("room_id is not the create event's ID")
        if not room_id.startswith("!"):
            raise AuthError("room_id does not start with '!'")
    elif create_event.room_id != room_id:
        raise AuthError("the create event is from another room")
    return create_event
