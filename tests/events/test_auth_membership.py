"""m.room.member auth rules, per room version.

spec: rooms/fragments/v1-auth-rules.md rule 5, rooms/fragments/v8-auth-rules.md rule 4,
rooms/v10.md, rooms/v11.md, rooms/v12.md#authorisation-rules rule 5
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.events._auth_fixtures import (
    ALICE,
    ALL,
    BOB,
    CAROL,
    DAVE,
    Case,
    Room,
    params,
    run_case,
    standard_room,
    versions,
)

KNOCK = versions(7)
KNOCK_RESTRICTED = versions(10)
RESTRICTED = versions(8)


def invite_only(version: str) -> Room:
    return standard_room(version, join_rule="invite")


def room_with_join_rule(rule: str) -> Callable[[str], Room]:
    return lambda version: standard_room(version, join_rule=rule)


GENERAL = [
    Case(
        "member_event_without_membership_denied",
        ALL,
        lambda r: r.build("m.room.member", CAROL, {"displayname": "c"}, CAROL),
        False,
        reason="no membership",
    ),
    Case(
        "member_event_without_state_key_denied",
        ALL,
        lambda r: r.build("m.room.member", CAROL, {"membership": "join"}),
        False,
        reason="state_key",
    ),
    Case(
        "unknown_membership_denied",
        ALL,
        lambda r: r.member_event(CAROL, "wander"),
        False,
        reason="unknown membership",
    ),
    Case(
        "non_string_membership_denied",
        ALL,
        lambda r: r.build("m.room.member", CAROL, {"membership": ["join"]}, CAROL),
        False,
    ),
    Case(
        "member_content_not_object_denied",
        ALL,
        lambda r: r.build("m.room.member", CAROL, "join", CAROL),
        False,
    ),
]

JOIN = [
    Case("join_public_room_allowed", ALL, lambda r: r.member_event(CAROL, "join"), True),
    Case(
        "join_on_behalf_of_another_user_denied",
        ALL,
        lambda r: r.member_event(CAROL, "join", sender=BOB),
        False,
        reason="another user",
    ),
    Case(
        "banned_user_cannot_join_public_room",
        ALL,
        lambda r: r.member_event(CAROL, "join"),
        False,
        setup=lambda r: r.set_member(CAROL, "ban", sender=ALICE),
        reason="banned",
    ),
    Case(
        "join_invite_only_room_uninvited_denied",
        ALL,
        lambda r: r.member_event(CAROL, "join"),
        False,
        room=invite_only,
        reason="not invited",
    ),
    Case(
        "join_invite_only_room_when_invited_allowed",
        ALL,
        lambda r: r.member_event(CAROL, "join"),
        True,
        setup=lambda r: r.set_member(CAROL, "invite", sender=ALICE),
        room=invite_only,
    ),
    Case(
        "rejoin_invite_only_room_when_joined_allowed",
        ALL,
        lambda r: r.member_event(BOB, "join", displayname="new name"),
        True,
        room=invite_only,
    ),
    Case(
        "join_room_without_join_rules_needs_invite",
        ALL,
        lambda r: r.member_event(CAROL, "join"),
        False,
        setup=lambda r: r.state.pop(("m.room.join_rules", "")),
    ),
    Case(
        "join_private_join_rule_denied",
        ALL,
        lambda r: r.member_event(CAROL, "join"),
        False,
        room=room_with_join_rule("private"),
    ),
    Case(
        "join_knock_room_uninvited_denied",
        ALL,
        lambda r: r.member_event(CAROL, "join"),
        False,
        room=room_with_join_rule("knock"),
    ),
    Case(
        "join_knock_room_when_invited_allowed_v7_plus",
        KNOCK,
        lambda r: r.member_event(CAROL, "join"),
        True,
        setup=lambda r: r.set_member(CAROL, "invite", sender=ALICE),
        room=room_with_join_rule("knock"),
    ),
    Case(
        # Before v7 "knock" is not a join rule at all, so even an invite does not help.
        "join_knock_room_when_invited_denied_before_v7",
        versions(1, 6),
        lambda r: r.member_event(CAROL, "join"),
        False,
        setup=lambda r: r.set_member(CAROL, "invite", sender=ALICE),
        room=room_with_join_rule("knock"),
    ),
    Case(
        "creator_first_join_after_create_allowed",
        ALL,
        lambda r: r.member_event(ALICE, "join"),
        True,
        room=lambda v: Room(v),
    ),
    Case(
        "non_creator_first_join_after_create_denied",
        ALL,
        lambda r: r.member_event(BOB, "join"),
        False,
        room=lambda v: Room(v),
    ),
    Case(
        # v12: only the create event's sender gets the first-join exemption.
        "additional_creator_first_join_is_not_exempt_v12",
        versions(12),
        lambda r: r.member_event(BOB, "join"),
        False,
        room=lambda v: Room(v, create_content={"additional_creators": [BOB]}),
    ),
    Case(
        "creator_join_not_straight_after_create_follows_join_rules",
        ALL,
        lambda r: r.member_event(ALICE, "join", prev=[r.create.event_id, r.last_id]),
        False,
        setup=lambda r: r.set_join_rule("invite"),
        room=lambda v: Room(v),
    ),
]

RESTRICTED_CASES = [
    Case(
        "restricted_join_authorised_by_joined_inviter_allowed",
        RESTRICTED,
        lambda r: r.member_event(CAROL, "join", join_authorised_via_users_server=ALICE),
        True,
        room=room_with_join_rule("restricted"),
    ),
    Case(
        "restricted_join_without_authorising_user_denied",
        RESTRICTED,
        lambda r: r.member_event(CAROL, "join"),
        False,
        room=room_with_join_rule("restricted"),
        reason="restricted join",
    ),
    Case(
        "restricted_join_authorised_by_user_without_invite_power_denied",
        RESTRICTED,
        lambda r: r.member_event(CAROL, "join", join_authorised_via_users_server=BOB),
        False,
        setup=lambda r: r.set_power_levels(invite=50),
        room=room_with_join_rule("restricted"),
        reason="may not invite",
    ),
    Case(
        "restricted_join_authorised_by_non_member_denied",
        RESTRICTED,
        lambda r: r.member_event(CAROL, "join", join_authorised_via_users_server=DAVE),
        False,
        room=room_with_join_rule("restricted"),
        reason="not joined",
    ),
    Case(
        "restricted_join_not_signed_by_authorising_server_denied",
        RESTRICTED,
        lambda r: r.member_event(
            CAROL, "join", join_authorised_via_users_server=BOB, signed_by=["c.test"]
        ),
        False,
        room=room_with_join_rule("restricted"),
        reason="not signed",
    ),
    Case(
        "authorising_user_not_a_user_id_denied",
        RESTRICTED,
        lambda r: r.member_event(CAROL, "join", join_authorised_via_users_server="nobody"),
        False,
        room=room_with_join_rule("restricted"),
    ),
    Case(
        "restricted_join_when_invited_needs_no_authoriser",
        RESTRICTED,
        lambda r: r.member_event(CAROL, "join"),
        True,
        setup=lambda r: r.set_member(CAROL, "invite", sender=ALICE),
        room=room_with_join_rule("restricted"),
    ),
    Case(
        "restricted_join_rule_unknown_before_v8",
        versions(1, 7),
        lambda r: r.member_event(CAROL, "join", join_authorised_via_users_server=BOB),
        False,
        room=room_with_join_rule("restricted"),
    ),
    Case(
        "knock_restricted_join_authorised_allowed_v10_plus",
        KNOCK_RESTRICTED,
        lambda r: r.member_event(CAROL, "join", join_authorised_via_users_server=BOB),
        True,
        room=room_with_join_rule("knock_restricted"),
    ),
    Case(
        "knock_restricted_join_rule_unknown_before_v10",
        versions(1, 9),
        lambda r: r.member_event(CAROL, "join", join_authorised_via_users_server=BOB),
        False,
        room=room_with_join_rule("knock_restricted"),
    ),
    Case(
        "banned_user_cannot_join_restricted_room_even_if_authorised",
        RESTRICTED,
        lambda r: r.member_event(CAROL, "join", join_authorised_via_users_server=BOB),
        False,
        setup=lambda r: r.set_member(CAROL, "ban", sender=ALICE),
        room=room_with_join_rule("restricted"),
        reason="banned",
    ),
]

INVITE = [
    Case(
        "member_can_invite_at_default_level",
        ALL,
        lambda r: r.member_event(CAROL, "invite", BOB),
        True,
    ),
    Case(
        "invite_requires_invite_level",
        ALL,
        lambda r: r.member_event(CAROL, "invite", BOB),
        False,
        setup=lambda r: r.set_power_levels(invite=50),
        reason="invite level",
    ),
    Case(
        "non_member_cannot_invite",
        ALL,
        lambda r: r.member_event(DAVE, "invite", CAROL),
        False,
        reason="not joined",
    ),
    Case(
        "cannot_invite_joined_user",
        ALL,
        lambda r: r.member_event(BOB, "invite", ALICE),
        False,
    ),
    Case(
        "cannot_invite_banned_user",
        ALL,
        lambda r: r.member_event(CAROL, "invite", ALICE),
        False,
        setup=lambda r: r.set_member(CAROL, "ban", sender=ALICE),
    ),
    Case(
        "reinvite_of_invited_user_allowed",
        ALL,
        lambda r: r.member_event(CAROL, "invite", ALICE),
        True,
        setup=lambda r: r.set_member(CAROL, "invite", sender=ALICE),
    ),
]


@pytest.mark.parametrize(
    ("case", "version"),
    params(GENERAL + JOIN + RESTRICTED_CASES + INVITE),
)
def test_membership_rule(case: Case, version: str) -> None:
    run_case(case, version)
