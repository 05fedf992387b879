"""Auth events selection, and checking an event's own ``auth_events`` list.

spec: server-server-api.md#auth-events-selection, rooms/fragments/v1-auth-rules.md rule 2,
rooms/v12.md#authorisation-rules rules 3.1-3.5
"""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.events.auth import AuthError, auth_types_for_event, check_auth_events_selection
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from tests.events._auth_fixtures import ALICE, ALL, BOB, CAROL, Room, standard_room, versions

CREATE = ("m.room.create", "")
PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")


def member(user: str) -> tuple[str, str]:
    return ("m.room.member", user)


SELECTION_ROWS: list[tuple[str, tuple[str, ...], tuple[Any, ...], set[tuple[str, str]]]] = [
    # name, versions, (type, sender, state_key, content), expected without create
    ("create_selects_nothing", ALL, ("m.room.create", ALICE, "", {}), set()),
    ("message_selects_pl_and_sender", ALL, ("m.room.message", BOB, None, {}), {PL, member(BOB)}),
    ("state_event_same_as_message", ALL, ("m.room.topic", BOB, "", {}), {PL, member(BOB)}),
    (
        "join_adds_target_and_join_rules",
        ALL,
        ("m.room.member", BOB, BOB, {"membership": "join"}),
        {PL, member(BOB), JR},
    ),
    (
        "invite_adds_target_and_join_rules",
        ALL,
        ("m.room.member", BOB, CAROL, {"membership": "invite"}),
        {PL, member(BOB), member(CAROL), JR},
    ),
    (
        "knock_adds_join_rules",
        ALL,
        ("m.room.member", CAROL, CAROL, {"membership": "knock"}),
        {PL, member(CAROL), JR},
    ),
    (
        "leave_has_no_join_rules",
        ALL,
        ("m.room.member", ALICE, BOB, {"membership": "leave"}),
        {PL, member(ALICE), member(BOB)},
    ),
    (
        "ban_has_no_join_rules",
        ALL,
        ("m.room.member", ALICE, BOB, {"membership": "ban"}),
        {PL, member(ALICE), member(BOB)},
    ),
    (
        "third_party_invite_adds_token_event",
        ALL,
        (
            "m.room.member",
            BOB,
            CAROL,
            {"membership": "invite", "third_party_invite": {"signed": {"token": "t"}}},
        ),
        {PL, member(BOB), member(CAROL), JR, ("m.room.third_party_invite", "t")},
    ),
    (
        "third_party_invite_without_token_adds_nothing",
        ALL,
        (
            "m.room.member",
            BOB,
            CAROL,
            {"membership": "invite", "third_party_invite": {"signed": 1}},
        ),
        {PL, member(BOB), member(CAROL), JR},
    ),
    (
        "restricted_join_adds_authorising_user_v8_plus",
        versions(8),
        (
            "m.room.member",
            CAROL,
            CAROL,
            {"membership": "join", "join_authorised_via_users_server": BOB},
        ),
        {PL, member(CAROL), JR, member(BOB)},
    ),
    (
        "authorising_user_ignored_before_v8",
        versions(1, 7),
        (
            "m.room.member",
            CAROL,
            CAROL,
            {"membership": "join", "join_authorised_via_users_server": BOB},
        ),
        {PL, member(CAROL), JR},
    ),
    (
        "authorising_user_ignored_for_non_join",
        versions(8),
        (
            "m.room.member",
            CAROL,
            CAROL,
            {"membership": "leave", "join_authorised_via_users_server": BOB},
        ),
        {PL, member(CAROL)},
    ),
    (
        "malformed_member_content_selects_basics",
        ALL,
        ("m.room.member", BOB, BOB, {"membership": 5}),
        {PL, member(BOB)},
    ),
]


@pytest.mark.parametrize(
    ("version", "shape", "expected"),
    [
        pytest.param(v, shape, expected, id=f"{name}-v{v}")
        for name, vs, shape, expected in SELECTION_ROWS
        for v in vs
    ],
)
def test_auth_types_for_event(
    version: str, shape: tuple[Any, ...], expected: set[tuple[str, str]]
) -> None:
    room_version = KNOWN_ROOM_VERSIONS[version]
    event_type = shape[0]
    # The create event is selected by every event but itself, except in v12.
    if event_type != "m.room.create" and not room_version.hydra:
        expected = expected | {CREATE}
    assert auth_types_for_event(room_version, *shape) == expected


def by_id(room: Room, event: Event) -> dict[str, Event]:
    return {i: room.events[i] for i in event.auth_event_ids if i in room.events}


def ref(room: Room, event: Event) -> Any:
    return room._ref(event.event_id)


@pytest.mark.parametrize("version", ALL)
def test_selection_of_well_built_event_passes(version: str) -> None:
    room = standard_room(version)
    event = room.member_event(CAROL, "invite", BOB)
    check_auth_events_selection(room.rv, event, by_id(room, event))


def _with_auth(room: Room, event: Event, extra: list[Event]) -> Event:
    event.pdu["auth_events"] = event.pdu["auth_events"] + [ref(room, e) for e in extra]
    return event


@pytest.mark.parametrize("version", ALL)
def test_duplicate_type_and_state_key_rejected(version: str) -> None:
    room = standard_room(version)
    old_pl = room.state[PL]
    room.set_power_levels(room.pl_users(bob=1))
    event = _with_auth(room, room.build("m.room.message", BOB, {"body": "x"}), [old_pl])
    with pytest.raises(AuthError, match="more than once"):
        check_auth_events_selection(room.rv, event, room.events)


@pytest.mark.parametrize("version", ALL)
def test_unselected_auth_event_rejected(version: str) -> None:
    room = standard_room(version)
    event = _with_auth(room, room.build("m.room.message", BOB, {"body": "x"}), [room.state[JR]])
    with pytest.raises(AuthError, match="not one the rules select"):
        check_auth_events_selection(room.rv, event, room.events)


@pytest.mark.parametrize("version", ALL)
def test_rejected_auth_event_rejected(version: str) -> None:
    room = standard_room(version)
    event = room.build("m.room.message", BOB, {"body": "x"})
    room.state[member(BOB)].internal.rejected_reason = "auth"
    with pytest.raises(AuthError, match="was rejected"):
        check_auth_events_selection(room.rv, event, room.events)


@pytest.mark.parametrize("version", ALL)
def test_auth_event_from_another_room_rejected(version: str) -> None:
    room, other = standard_room(version), standard_room(version)
    event = room.build("m.room.message", BOB, {"body": "x"})
    foreign = other.state[member(BOB)]
    event.pdu["auth_events"] = [
        ref(room, room.events[i])
        for i in event.auth_event_ids
        if i != room.state[member(BOB)].event_id
    ] + [ref(room, foreign)]
    with pytest.raises(AuthError, match="another room"):
        check_auth_events_selection(room.rv, event, {**room.events, **other.events})


@pytest.mark.parametrize("version", ALL)
def test_missing_auth_event_rejected(version: str) -> None:
    room = standard_room(version)
    event = room.build("m.room.message", BOB, {"body": "x"})
    with pytest.raises(AuthError, match="not available"):
        check_auth_events_selection(room.rv, event, {})


@pytest.mark.parametrize("version", ALL)
def test_non_state_auth_event_rejected(version: str) -> None:
    room = standard_room(version)
    message = room.add("m.room.message", BOB, {"body": "x"})
    event = _with_auth(room, room.build("m.room.message", BOB, {"body": "y"}), [message])
    with pytest.raises(AuthError, match="not a state event"):
        check_auth_events_selection(room.rv, event, room.events)


@pytest.mark.parametrize("version", versions(1, 11))
def test_missing_create_event_rejected_before_v12(version: str) -> None:
    room = standard_room(version)
    event = room.build("m.room.message", BOB, {"body": "x"})
    event.pdu["auth_events"] = [
        ref(room, room.events[i]) for i in event.auth_event_ids if i != room.create.event_id
    ]
    with pytest.raises(AuthError, match="create event"):
        check_auth_events_selection(room.rv, event, room.events)


def test_v12_citing_create_event_rejected() -> None:
    room = standard_room("12")
    event = _with_auth(room, room.build("m.room.message", BOB, {"body": "x"}), [room.create])
    with pytest.raises(AuthError, match="must not cite the create event"):
        check_auth_events_selection(room.rv, event, room.events)


@pytest.mark.parametrize("version", ALL)
def test_create_event_with_auth_events_rejected(version: str) -> None:
    room = standard_room(version)
    create = room.create
    create.pdu["auth_events"] = [ref(room, room.state[PL])]
    with pytest.raises(AuthError):
        check_auth_events_selection(room.rv, create, room.events)
