"""The ``m.room.member`` rules: join, invite, leave, ban, knock.

spec: rooms/fragments/v1-auth-rules.md rule 5, rooms/fragments/v3-auth-rules.md rule 5,
rooms/fragments/v8-auth-rules.md rule 4, rooms/v10.md and rooms/v11.md rule 4,
rooms/v12.md#authorisation-rules rule 5
"""

from __future__ import annotations

from typing import Any

from homeserver.events.auth.errors import AuthError
from homeserver.events.auth.ids import domain_of, is_valid_user_id
from homeserver.events.auth.power_levels import PowerLevels, primary_creator
from homeserver.events.auth.third_party import signed_token_matches_keys
from homeserver.events.event import Event, StateMap
from homeserver.events.room_versions import RoomVersion

JOIN_RULES_KEY = ("m.room.join_rules", "")
AUTHORISING_USER = "join_authorised_via_users_server"


def membership_in(state: StateMap[Event], user_id: str) -> str | None:
    """``user_id``'s membership in ``state``, or None if they have no member event."""
    member = state.get(("m.room.member", user_id))
    if member is None:
        return None
    content = member.content
    membership = content.get("membership") if isinstance(content, dict) else None
    return membership if isinstance(membership, str) else None


def join_rule_in(state: StateMap[Event]) -> str:
    """The room's join rule.  Without one the room behaves as invite-only.

    The spec lists no default; "invite" is the de-facto one (it only lets members and
    invitees in), so a room with no join rules event is not accidentally public.
    """
    event = state.get(JOIN_RULES_KEY)
    content = event.content if event is not None else None
    rule = content.get("join_rule") if isinstance(content, dict) else None
    return rule if isinstance(rule, str) else "invite"


def check_member_event(
    room_version: RoomVersion,
    event: Event,
    auth_events: StateMap[Event],
    levels: PowerLevels,
    create_event: Event,
) -> None:
    """Raise :class:`AuthError` unless this membership change is allowed."""
    target = event.state_key
    if not isinstance(target, str):
        raise AuthError("member event has no state_key")
    content = event.content
    if not isinstance(content, dict) or "membership" not in content:
        raise AuthError("member event has no membership")
    membership = content["membership"]

    if room_version.restricted_join_rule and AUTHORISING_USER in content:
        _check_authorising_server_signed(event, content[AUTHORISING_USER])

    if membership == "join":
        _check_join(room_version, event, auth_events, levels, create_event, target, content)
    elif membership == "invite":
        _check_invite(event, auth_events, levels, target, content)
    elif membership == "leave":
        _check_leave(room_version, event, auth_events, levels, target)
    elif membership == "ban":
        _check_ban(event, auth_events, levels, target)
    elif membership == "knock" and room_version.knock_join_rule:
        _check_knock(room_version, event, auth_events, target)
    else:
        raise AuthError(f"unknown membership {membership!r}")


def _check_authorising_server_signed(event: Event, authoriser: object) -> None:
    """v8+ rule: the event must be signed by the authorising user's server.

    Only the *presence* of that server's signature is checked here; that signatures
    verify is checked on receipt (``required_signature_servers`` includes that server).
    """
    if not is_valid_user_id(authoriser):
        raise AuthError(f"{AUTHORISING_USER} is not a valid user ID: {authoriser!r}")
    server = domain_of(authoriser)
    signatures = event.pdu.get("signatures")
    if not isinstance(signatures, dict) or server not in signatures:
        raise AuthError(f"join not signed by the authorising server {server}")


def _check_join(
    room_version: RoomVersion,
    event: Event,
    auth_events: StateMap[Event],
    levels: PowerLevels,
    create_event: Event,
    target: str,
    content: dict[str, Any],
) -> None:
    # The creator's own first join, straight after the create event, needs no rules.
    prev_events = event.prev_event_ids
    if (
        len(prev_events) == 1
        and prev_events[0] == create_event.event_id
        and target == primary_creator(room_version, create_event)
    ):
        return
    sender = event.sender
    if sender != target:
        raise AuthError("cannot join on behalf of another user")
    sender_membership = membership_in(auth_events, sender)
    if sender_membership == "ban":
        raise AuthError("sender is banned")
    join_rule = join_rule_in(auth_events)

    if join_rule == "invite" or (room_version.knock_join_rule and join_rule == "knock"):
        if sender_membership in ("invite", "join"):
            return
        raise AuthError(f"join rule is {join_rule!r} and sender is not invited")

    if (room_version.restricted_join_rule and join_rule == "restricted") or (
        room_version.knock_restricted_join_rule and join_rule == "knock_restricted"
    ):
        if sender_membership in ("invite", "join"):
            return
        authoriser = content.get(AUTHORISING_USER)
        if not isinstance(authoriser, str):
            raise AuthError(f"restricted join without {AUTHORISING_USER}")
        if membership_in(auth_events, authoriser) != "join":
            raise AuthError(f"authorising user {authoriser} is not joined")
        if levels.user_level(authoriser) < levels.named_level("invite"):
            raise AuthError(f"authorising user {authoriser} may not invite")
        return

    if join_rule == "public":
        return
    raise AuthError(f"join rule {join_rule!r} does not allow joining")


def _check_invite(
    event: Event,
    auth_events: StateMap[Event],
    levels: PowerLevels,
    target: str,
    content: dict[str, Any],
) -> None:
    target_membership = membership_in(auth_events, target)
    sender = event.sender
    if "third_party_invite" in content:
        if target_membership == "ban":
            raise AuthError("invited user is banned")
        invite = content["third_party_invite"]
        signed = invite.get("signed") if isinstance(invite, dict) else None
        if not isinstance(signed, dict):
            raise AuthError("third_party_invite has no signed object")
        mxid, token = signed.get("mxid"), signed.get("token")
        if not isinstance(mxid, str) or not isinstance(token, str):
            raise AuthError("third_party_invite.signed lacks mxid or token")
        if mxid != target:
            raise AuthError("third_party_invite.signed.mxid does not match state_key")
        invite_event = auth_events.get(("m.room.third_party_invite", token))
        if invite_event is None:
            raise AuthError("no m.room.third_party_invite for this token")
        if invite_event.sender != sender:
            raise AuthError("sender did not send the m.room.third_party_invite")
        if signed_token_matches_keys(signed, invite_event.content):
            return
        raise AuthError("third_party_invite signature matches none of the invite's keys")

    if membership_in(auth_events, sender) != "join":
        raise AuthError("sender is not joined to the room")
    if target_membership in ("join", "ban"):
        raise AuthError(f"invited user's membership is {target_membership!r}")
    if levels.user_level(sender) >= levels.named_level("invite"):
        return
    raise AuthError("sender's power level is below the invite level")


def _check_leave(
    room_version: RoomVersion,
    event: Event,
    auth_events: StateMap[Event],
    levels: PowerLevels,
    target: str,
) -> None:
    sender = event.sender
    target_membership = membership_in(auth_events, target)
    if sender == target:
        # Leaving, rejecting an invite or (v7+) withdrawing a knock.
        allowed = (
            ("invite", "join", "knock") if room_version.knock_join_rule else ("invite", "join")
        )
        if target_membership in allowed:
            return
        raise AuthError(f"cannot leave with membership {target_membership!r}")
    if membership_in(auth_events, sender) != "join":
        raise AuthError("sender is not joined to the room")
    sender_level = levels.user_level(sender)
    if target_membership == "ban" and sender_level < levels.named_level("ban"):
        raise AuthError("sender's power level is below the ban level (unban)")
    if sender_level >= levels.named_level("kick") and levels.user_level(target) < sender_level:
        return
    raise AuthError("sender may not kick this user")


def _check_ban(
    event: Event, auth_events: StateMap[Event], levels: PowerLevels, target: str
) -> None:
    sender = event.sender
    if membership_in(auth_events, sender) != "join":
        raise AuthError("sender is not joined to the room")
    sender_level = levels.user_level(sender)
    if sender_level >= levels.named_level("ban") and levels.user_level(target) < sender_level:
        return
    raise AuthError("sender may not ban this user")


def _check_knock(
    room_version: RoomVersion, event: Event, auth_events: StateMap[Event], target: str
) -> None:
    join_rule = join_rule_in(auth_events)
    knockable = (
        ("knock", "knock_restricted") if room_version.knock_restricted_join_rule else ("knock",)
    )
    if join_rule not in knockable:
        raise AuthError(f"join rule {join_rule!r} does not allow knocking")
    if event.sender != target:
        raise AuthError("cannot knock on behalf of another user")
    if membership_in(auth_events, target) in ("ban", "invite", "join"):
        raise AuthError("cannot knock while banned, invited or joined")
