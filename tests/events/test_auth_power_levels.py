"""m.room.power_levels: value parsing per version, defaults, and the change rules.

spec: rooms/fragments/v1-auth-rules.md rule 10, rooms/v6.md (notifications),
rooms/v10.md (integers only), rooms/v12.md rule 10, rooms/fragments/v1-stringy-power-levels.md,
rooms/fragments/v1-floaty-power-levels.md
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from homeserver.events.auth import (
    get_named_level,
    get_user_power_level,
    parse_power_level,
    required_power_level,
)
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from tests.events._auth_fixtures import (
    ALICE,
    ALL,
    BOB,
    CAROL,
    Case,
    Room,
    params,
    run_case,
    standard_room,
    steps,
    versions,
)

PARSE_ROWS: list[tuple[str, Any, dict[str, int | None]]] = [
    # name, value, {version: parsed or None}
    ("int", 50, {"1": 50, "6": 50, "9": 50, "10": 50}),
    ("negative_int", -5, {"1": -5, "10": -5}),
    ("bool_is_not_a_level", True, {"1": None, "9": None, "10": None}),
    ("string_int", "50", {"1": 50, "9": 50, "10": None}),
    ("string_leading_zeroes", "000100", {"1": 100, "10": None}),
    ("string_signs", "+100", {"1": 100, "9": 100}),
    ("string_negative", "-100", {"1": -100}),
    ("string_whitespace", " 00100 ", {"1": 100, "9": 100}),
    ("string_decimal_rejected", "50.5", {"1": None, "9": None}),
    ("string_underscore_rejected", "1_000", {"1": None}),
    ("string_double_sign_rejected", "+-1", {"1": None}),
    ("string_non_ascii_digits_rejected", "\u0665\u0660", {"1": None}),
    ("string_empty_rejected", "", {"1": None}),
    ("float_truncated_v1_to_v5", 50.57, {"1": 50, "5": 50, "6": None, "10": None}),
    ("float_exponent", 5.114698e4, {"1": 51146}),
    ("float_negative_truncates_toward_zero", -1.5, {"1": -1}),
    ("float_infinity_rejected", math.inf, {"1": None}),
    ("float_nan_rejected", math.nan, {"1": None}),
    ("null_rejected", None, {"1": None, "10": None}),
    ("list_rejected", [50], {"1": None, "10": None}),
    ("object_rejected", {"level": 50}, {"1": None}),
]


@pytest.mark.parametrize(
    ("value", "version", "expected"),
    [
        pytest.param(value, version, expected, id=f"{name}-v{version}")
        for name, value, by_version in PARSE_ROWS
        for version, expected in by_version.items()
    ],
)
def test_parse_power_level(value: Any, version: str, expected: int | None) -> None:
    assert parse_power_level(value, KNOWN_ROOM_VERSIONS[version]) == expected


def test_default_levels_without_power_levels_event_pre_v12() -> None:
    room = Room("11")
    assert get_user_power_level(room.rv, ALICE, room.state) == 100
    assert get_user_power_level(room.rv, BOB, room.state) == 0
    assert required_power_level(room.rv, "m.room.message", None, room.state) == 0
    assert required_power_level(room.rv, "m.room.topic", "", room.state) == 50
    assert get_named_level(room.rv, "ban", room.state) == 50
    assert get_named_level(room.rv, "invite", room.state) == 0


def test_v1_to_v10_creator_comes_from_content_creator() -> None:
    room = Room("10", create_content={"creator": BOB})
    assert get_user_power_level(room.rv, BOB, room.state) == 100
    assert get_user_power_level(room.rv, ALICE, room.state) == 0


def test_v12_creators_have_infinite_power_with_or_without_power_levels() -> None:
    room = Room("12", create_content={"additional_creators": [BOB]})
    assert get_user_power_level(room.rv, ALICE, room.state) == math.inf
    assert get_user_power_level(room.rv, BOB, room.state) == math.inf
    room.set_power_levels({CAROL: 100})
    assert get_user_power_level(room.rv, BOB, room.state) == math.inf
    assert get_user_power_level(room.rv, CAROL, room.state) == 100


def test_levels_from_power_levels_event_and_defaults() -> None:
    room = standard_room("9")
    room.set_power_levels(
        {ALICE: 100, BOB: "75"},
        users_default=5,
        events={"m.room.topic": 10, "m.custom": "20"},
        state_default=40,
        events_default=1,
    )
    assert get_user_power_level(room.rv, BOB, room.state) == 75
    assert get_user_power_level(room.rv, CAROL, room.state) == 5
    assert required_power_level(room.rv, "m.room.topic", "", room.state) == 10
    assert required_power_level(room.rv, "m.custom", None, room.state) == 20
    assert required_power_level(room.rv, "m.room.name", "", room.state) == 40
    assert required_power_level(room.rv, "m.room.message", None, room.state) == 1
    assert get_named_level(room.rv, "kick", room.state) == 50


def test_unreadable_levels_in_state_fall_back_to_defaults() -> None:
    room = standard_room("10")
    room.set_power_levels({ALICE: 100, BOB: "75"}, users_default="x", ban=None, events=[1])
    assert get_user_power_level(room.rv, BOB, room.state) == 0
    assert get_named_level(room.rv, "ban", room.state) == 50
    assert required_power_level(room.rv, "m.room.topic", "", room.state) == 50


def pl_event(users: Any = None, sender: str = ALICE, **levels: Any) -> Callable[[Room], Event]:
    """A new power levels event by ``sender`` with exactly these ``users``."""

    def make(room: Room) -> Event:
        content: dict[str, Any] = {"users": room.pl_users() if users is None else users}
        content.update(levels)
        return room.build("m.room.power_levels", sender, content, "")

    return make


def bob_is_moderator(room: Room) -> None:
    room.set_power_levels(room.pl_users(bob=50))


def pl_with(
    users: dict[str, int] | None = None, sender: str = ALICE, **levels: Any
) -> Callable[[Room], Event]:
    """A new power levels event; ``users`` by short name, plus the creator pre-v12."""

    def make(room: Room) -> Event:
        users_map = room.pl_users(**(users or {}))
        return room.build("m.room.power_levels", sender, {"users": users_map, **levels}, "")

    return make


VALIDITY = [
    Case("well_formed_power_levels_allowed", ALL, pl_with({"bob": 10}), True),
    Case(
        "string_user_level_allowed_before_v10",
        versions(1, 9),
        pl_event({ALICE: "100", BOB: "50"}),
        True,
    ),
    Case(
        "string_user_level_rejected_from_v10",
        versions(10, 11),
        pl_event({ALICE: 100, BOB: "50"}),
        False,
        reason="not an integer",
    ),
    Case(
        "string_named_level_allowed_v9_rejected_v10",
        versions(1, 9),
        pl_with(ban="50"),
        True,
    ),
    Case(
        "string_named_level_rejected_from_v10",
        versions(10),
        pl_with(ban="50"),
        False,
        reason="'ban'",
    ),
    Case(
        "string_event_level_rejected_from_v10",
        versions(10),
        pl_with(events={"m.room.name": "50"}),
        False,
        reason="events.m.room.name",
    ),
    Case(
        "string_notification_level_rejected_from_v10",
        versions(10),
        pl_with(notifications={"room": "50"}),
        False,
    ),
    Case("events_not_an_object_rejected", ALL, pl_with(events=["m.room.name"]), False),
    Case("users_not_an_object_rejected", ALL, pl_event([ALICE]), False),
    Case(
        "users_key_invalid_user_id_rejected",
        ALL,
        lambda r: r.build(
            "m.room.power_levels", ALICE, {"users": {**r.pl_users(), "not-a-user": 10}}, ""
        ),
        False,
        reason="valid user ID",
    ),
    Case(
        "users_key_without_server_name_rejected",
        ALL,
        lambda r: r.build(
            "m.room.power_levels", ALICE, {"users": {**r.pl_users(), "@bob": 10}}, ""
        ),
        False,
    ),
    Case(
        "float_user_level_allowed_v1_to_v5",
        versions(1, 5),
        pl_event({ALICE: 100, BOB: 50.57}),
        True,
    ),
    Case(
        "bool_level_rejected",
        ALL,
        pl_with(kick=True),
        False,
    ),
    Case(
        "garbage_string_level_rejected_before_v10",
        versions(1, 9),
        pl_with(kick="high"),
        False,
    ),
    Case(
        "content_not_an_object_rejected",
        ALL,
        lambda r: r.build("m.room.power_levels", ALICE, [1, 2], ""),
        False,
    ),
    Case(
        "first_power_levels_event_may_set_anything_well_formed",
        ALL,
        pl_with({"bob": 100}, ban=1000),
        True,
        setup=lambda r: r.state.pop(("m.room.power_levels", "")),
    ),
]

CHANGES = [
    Case(
        "moderator_cannot_raise_named_level_above_own",
        ALL,
        pl_with({"bob": 50}, sender=BOB, kick=60),
        False,
        setup=bob_is_moderator,
        reason="'kick'",
    ),
    Case(
        "moderator_may_lower_named_level_at_own_level",
        ALL,
        pl_with({"bob": 50}, sender=BOB, kick=40),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50), kick=50),
    ),
    Case(
        "moderator_cannot_change_named_level_above_own",
        ALL,
        pl_with({"bob": 50}, sender=BOB, ban=40),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50), ban=60),
    ),
    Case(
        "removing_named_level_above_own_denied",
        ALL,
        pl_with({"bob": 50}, sender=BOB),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50), ban=60),
    ),
    Case(
        "string_and_int_of_same_level_is_no_change_before_v10",
        versions(1, 9),
        pl_with({"bob": 50}, sender=BOB, ban=60),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50), ban="60"),
    ),
    Case(
        "moderator_cannot_add_event_level_above_own",
        ALL,
        pl_with({"bob": 50}, sender=BOB, events={"m.room.name": 51}),
        False,
        setup=bob_is_moderator,
        reason="events.m.room.name",
    ),
    Case(
        "moderator_cannot_change_event_level_above_own",
        ALL,
        pl_with({"bob": 50}, sender=BOB, events={"m.room.name": 10}),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50), events={"m.room.name": 100}),
    ),
    Case(
        "moderator_may_add_event_level_at_own",
        ALL,
        pl_with({"bob": 50}, sender=BOB, events={"m.room.name": 50}),
        True,
        setup=bob_is_moderator,
    ),
    Case(
        "notifications_protected_from_v6",
        versions(6),
        pl_with({"bob": 50}, sender=BOB, notifications={"room": 10}),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50), notifications={"room": 100}),
        reason="notifications.room",
    ),
    Case(
        "notifications_unprotected_before_v6",
        versions(1, 5),
        pl_with({"bob": 50}, sender=BOB, notifications={"room": 10}),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50), notifications={"room": 100}),
    ),
    Case(
        "moderator_cannot_promote_above_own",
        ALL,
        pl_with({"bob": 50, "carol": 51}, sender=BOB),
        False,
        setup=bob_is_moderator,
        reason="above their own",
    ),
    Case(
        "moderator_may_promote_to_own_level",
        ALL,
        pl_with({"bob": 50, "carol": 50}, sender=BOB),
        True,
        setup=bob_is_moderator,
    ),
    Case(
        "moderator_cannot_demote_peer",
        ALL,
        pl_with({"bob": 50, "carol": 0}, sender=BOB),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50, carol=50)),
        reason="not below their own",
    ),
    Case(
        "moderator_may_demote_lower_user",
        ALL,
        pl_with({"bob": 50}, sender=BOB),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50, carol=20)),
    ),
    Case(
        "user_may_demote_themselves",
        ALL,
        pl_with({"bob": 10}, sender=BOB, events={"m.room.power_levels": 50}),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50), events={"m.room.power_levels": 50}),
    ),
    Case(
        "user_without_power_levels_send_level_denied",
        ALL,
        pl_with({"bob": 50}, sender=BOB),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50), events={"m.room.power_levels": 100}),
        reason="needed for m.room.power_levels",
    ),
    Case(
        "creator_cannot_be_demoted_by_peer_pre_v12",
        versions(1, 11),
        pl_event({ALICE: 0, BOB: 100}, sender=BOB),
        False,
        setup=lambda r: r.set_power_levels({ALICE: 100, BOB: 100}),
    ),
]

V12 = [
    Case(
        "v12_power_levels_listing_creator_rejected",
        versions(12),
        pl_event({ALICE: 100}),
        False,
        reason="creators",
    ),
    Case(
        "v12_power_levels_listing_additional_creator_rejected",
        versions(12),
        pl_event({BOB: 50}),
        False,
        room=lambda v: standard_room_with_creators(v, [BOB]),
        reason="creators",
    ),
    Case(
        "v11_power_levels_listing_creator_allowed",
        versions(11, 11),
        pl_event({ALICE: 100}),
        True,
    ),
    Case(
        "v12_creator_can_set_any_level",
        versions(12),
        pl_event({BOB: 2**53 - 1}, ban=2**53 - 1),
        True,
    ),
    Case(
        "v12_additional_creator_can_change_power_levels_set_by_other_creator",
        versions(12),
        pl_event({CAROL: 1000}, sender=BOB, kick=500),
        True,
        room=lambda v: standard_room_with_creators(v, [BOB]),
        setup=lambda r: r.set_power_levels({CAROL: 100}, kick=99),
    ),
    Case(
        "v12_non_creator_admin_cannot_set_level_above_own",
        versions(12),
        pl_event({CAROL: 100, BOB: 101}, sender=CAROL),
        False,
        setup=steps(
            lambda r: r.set_member(CAROL, "join"),
            lambda r: r.set_power_levels({CAROL: 100}),
        ),
    ),
]


def standard_room_with_creators(version: str, additional: list[str]) -> Room:
    room = standard_room(version, create_content={"additional_creators": additional})
    room.set_power_levels({})
    return room


@pytest.mark.parametrize(("case", "version"), params(VALIDITY + CHANGES + V12))
def test_power_levels_rule(case: Case, version: str) -> None:
    run_case(case, version)
