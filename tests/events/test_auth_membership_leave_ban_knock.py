"""m.room.member auth rules for leave/kick/unban, ban and knock, per room version.

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
    steps,
    versions,
)

KNOCK = versions(7)
KNOCK_RESTRICTED = versions(10)
RESTRICTED = versions(8)


def room_with_join_rule(rule: str) -> Callable[[str], Room]:
    return lambda version: standard_room(version, join_rule=rule)


LEAVE = [
    Case("member_can_leave", ALL, lambda r: r.member_event(BOB, "leave"), True),
    Case(
        "invitee_can_reject_invite",
        ALL,
        lambda r: r.member_event(CAROL, "leave"),
        True,
        setup=lambda r: r.set_member(CAROL, "invite", sender=ALICE),
    ),
    Case(
        "non_member_cannot_leave",
        ALL,
        lambda r: r.member_event(CAROL, "leave"),
        False,
    ),
    Case(
        "banned_user_cannot_unban_themselves",
        ALL,
        lambda r: r.member_event(CAROL, "leave"),
        False,
        setup=lambda r: r.set_member(CAROL, "ban", sender=ALICE),
    ),
    Case(
        "knocker_can_withdraw_knock_v7_plus",
        KNOCK,
        lambda r: r.member_event(CAROL, "leave"),
        True,
        setup=lambda r: r.set_member(CAROL, "knock"),
        room=room_with_join_rule("knock"),
    ),
    Case(
        "knock_membership_cannot_be_left_before_v7",
        versions(1, 6),
        lambda r: r.member_event(CAROL, "leave"),
        False,
        setup=lambda r: r.set_member(CAROL, "knock"),
    ),
    Case("admin_can_kick_member", ALL, lambda r: r.member_event(BOB, "leave", ALICE), True),
    Case(
        "member_below_kick_level_cannot_kick",
        ALL,
        lambda r: r.member_event(CAROL, "leave", BOB),
        False,
        setup=lambda r: r.set_member(CAROL, "join"),
        reason="may not kick",
    ),
    Case(
        "cannot_kick_user_with_equal_level",
        ALL,
        lambda r: r.member_event(CAROL, "leave", BOB),
        False,
        setup=steps(
            lambda r: r.set_member(CAROL, "join"),
            lambda r: r.set_power_levels(r.pl_users(bob=50, carol=50)),
        ),
    ),
    Case(
        "kick_by_non_member_denied",
        ALL,
        lambda r: r.member_event(BOB, "leave", DAVE),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(dave=100)),
        reason="not joined",
    ),
    Case(
        "unban_needs_ban_level",
        ALL,
        lambda r: r.member_event(CAROL, "leave", BOB),
        False,
        setup=steps(
            lambda r: r.set_member(CAROL, "ban", sender=ALICE),
            lambda r: r.set_power_levels(r.pl_users(bob=50), ban=60),
        ),
        reason="ban level",
    ),
    Case(
        "unban_with_kick_and_ban_level_allowed",
        ALL,
        lambda r: r.member_event(CAROL, "leave", ALICE),
        True,
        setup=lambda r: r.set_member(CAROL, "ban", sender=ALICE),
    ),
]

BAN = [
    Case("admin_can_ban_non_member", ALL, lambda r: r.member_event(CAROL, "ban", ALICE), True),
    Case(
        "member_below_ban_level_cannot_ban",
        ALL,
        lambda r: r.member_event(CAROL, "ban", BOB),
        False,
        reason="may not ban",
    ),
    Case(
        "cannot_ban_higher_user",
        ALL,
        lambda r: r.member_event(ALICE, "ban", BOB),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50)),
    ),
    Case(
        "cannot_ban_user_with_equal_level",
        ALL,
        lambda r: r.member_event(CAROL, "ban", BOB),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50, carol=50)),
    ),
    Case(
        "moderator_can_ban_lower_user",
        ALL,
        lambda r: r.member_event(CAROL, "ban", BOB),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50, carol=49)),
    ),
    Case(
        "ban_by_non_member_denied",
        ALL,
        lambda r: r.member_event(BOB, "ban", DAVE),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(dave=100)),
    ),
]

KNOCK_CASES = [
    Case(
        "knock_on_knock_room_allowed_v7_plus",
        KNOCK,
        lambda r: r.member_event(CAROL, "knock"),
        True,
        room=room_with_join_rule("knock"),
    ),
    Case(
        "knock_membership_unknown_before_v7",
        versions(1, 6),
        lambda r: r.member_event(CAROL, "knock"),
        False,
        room=room_with_join_rule("knock"),
        reason="unknown membership",
    ),
    Case(
        "knock_on_public_room_denied",
        KNOCK,
        lambda r: r.member_event(CAROL, "knock"),
        False,
        reason="does not allow knocking",
    ),
    Case(
        "knock_on_invite_room_denied",
        KNOCK,
        lambda r: r.member_event(CAROL, "knock"),
        False,
        room=room_with_join_rule("invite"),
    ),
    Case(
        "knock_on_knock_restricted_room_allowed_v10_plus",
        KNOCK_RESTRICTED,
        lambda r: r.member_event(CAROL, "knock"),
        True,
        room=room_with_join_rule("knock_restricted"),
    ),
    Case(
        "knock_on_knock_restricted_room_denied_v7_to_v9",
        versions(7, 9),
        lambda r: r.member_event(CAROL, "knock"),
        False,
        room=room_with_join_rule("knock_restricted"),
    ),
    Case(
        "knock_on_restricted_room_denied",
        RESTRICTED,
        lambda r: r.member_event(CAROL, "knock"),
        False,
        room=room_with_join_rule("restricted"),
    ),
    Case(
        "knock_on_behalf_of_another_user_denied",
        KNOCK,
        lambda r: r.member_event(CAROL, "knock", BOB),
        False,
        room=room_with_join_rule("knock"),
    ),
    Case(
        "banned_user_cannot_knock",
        KNOCK,
        lambda r: r.member_event(CAROL, "knock"),
        False,
        setup=lambda r: r.set_member(CAROL, "ban", sender=ALICE),
        room=room_with_join_rule("knock"),
    ),
    Case(
        "joined_user_cannot_knock",
        KNOCK,
        lambda r: r.member_event(BOB, "knock"),
        False,
        room=room_with_join_rule("knock"),
    ),
    Case(
        "invited_user_cannot_knock",
        KNOCK,
        lambda r: r.member_event(CAROL, "knock"),
        False,
        setup=lambda r: r.set_member(CAROL, "invite", sender=ALICE),
        room=room_with_join_rule("knock"),
    ),
]


@pytest.mark.parametrize(("case", "version"), params(LEAVE + BAN + KNOCK_CASES))
def test_membership_rule(case: Case, version: str) -> None:
    run_case(case, version)
