"""The create event rules, the room/create-event link, m.federate, and v11/v12 creators.

spec: rooms/fragments/v1-auth-rules.md rules 1-3, rooms/v11.md rule 1,
rooms/v12.md#authorisation-rules rules 1, 2, 4 and the creators note
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from homeserver.events.auth import AuthError, check_auth_rules, get_room_creators
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from tests.events._auth_fixtures import (
    ALICE,
    ALL,
    BOB,
    CAROL,
    ERIN,
    Case,
    Room,
    params,
    run_case,
    standard_room,
    steps,
    versions,
)

DELETE = object()


def create_event(version: str, content: dict[str, Any], pdu: dict[str, Any]) -> Event:
    """A create event by ALICE, with content/PDU keys overridden (``DELETE`` removes)."""
    room_version = KNOWN_ROOM_VERSIONS[version]
    body: dict[str, Any] = {
        "type": "m.room.create",
        "sender": ALICE,
        "state_key": "",
        "content": {"room_version": version, "creator": ALICE},
        "prev_events": [],
        "auth_events": [],
        "depth": 1,
        "origin_server_ts": 1,
    }
    if not room_version.hydra:
        body["room_id"] = "!room:a.test"
    for target, overrides in ((body["content"], content), (body, pdu)):
        for key, value in overrides.items():
            if value is DELETE:
                target.pop(key, None)
            else:
                target[key] = value
    return Event(body, room_version, "$create")


def check_create(event: Event) -> None:
    check_auth_rules(event.room_version, event, {})


CREATE_ROWS: list[tuple[str, tuple[str, ...], dict[str, Any], dict[str, Any], bool]] = [
    # name, versions, content overrides, pdu overrides, allowed
    ("plain_create_allowed", ALL, {}, {}, True),
    ("create_with_prev_events_denied", ALL, {}, {"prev_events": ["$x"]}, False),
    ("create_room_id_on_other_server_denied", versions(1, 11), {}, {"room_id": "!r:b.test"}, False),
    ("create_without_room_id_denied_pre_v12", versions(1, 11), {}, {"room_id": DELETE}, False),
    ("create_with_room_id_denied_v12", versions(12), {}, {"room_id": "!room:a.test"}, False),
    ("unknown_room_version_denied", ALL, {"room_version": "99"}, {}, False),
    ("non_string_room_version_denied", ALL, {"room_version": 1}, {}, False),
    ("absent_room_version_allowed", ALL, {"room_version": DELETE}, {}, True),
    ("create_content_not_object_denied", ALL, {}, {"content": "hi"}, False),
    ("creator_absent_denied_v1_to_v10", versions(1, 10), {"creator": DELETE}, {}, False),
    ("creator_absent_allowed_from_v11", versions(11), {"creator": DELETE}, {}, True),
    (
        "additional_creators_valid_allowed_v12",
        versions(12),
        {"additional_creators": [BOB]},
        {},
        True,
    ),
    ("additional_creators_empty_allowed_v12", versions(12), {"additional_creators": []}, {}, True),
    (
        "additional_creators_invalid_user_id_denied_v12",
        versions(12),
        {"additional_creators": ["bob"]},
        {},
        False,
    ),
    (
        "additional_creators_without_server_name_denied_v12",
        versions(12),
        {"additional_creators": ["@bob:"]},
        {},
        False,
    ),
    (
        "additional_creators_non_string_denied_v12",
        versions(12),
        {"additional_creators": [BOB, 7]},
        {},
        False,
    ),
    (
        "additional_creators_not_a_list_denied_v12",
        versions(12),
        {"additional_creators": BOB},
        {},
        False,
    ),
    (
        "additional_creators_ignored_before_v12",
        versions(1, 11),
        {"additional_creators": "nonsense"},
        {},
        True,
    ),
]


@pytest.mark.parametrize(
    ("version", "content", "pdu", "allowed"),
    [
        pytest.param(v, content, pdu, allowed, id=f"{name}-v{v}")
        for name, vs, content, pdu, allowed in CREATE_ROWS
        for v in vs
    ],
)
def test_create_event_rule(
    version: str, content: dict[str, Any], pdu: dict[str, Any], allowed: bool
) -> None:
    event = create_event(version, content, pdu)
    if allowed:
        check_create(event)
    else:
        with pytest.raises(AuthError):
            check_create(event)


def test_room_creators_per_version() -> None:
    v10 = Room("10", create_content={"creator": BOB})
    assert get_room_creators(v10.rv, v10.create) == {BOB}
    v11 = Room("11", create_content={"creator": BOB, "additional_creators": [CAROL]})
    assert get_room_creators(v11.rv, v11.create) == {ALICE}
    v12 = Room("12", create_content={"additional_creators": [BOB, CAROL]})
    assert get_room_creators(v12.rv, v12.create) == {ALICE, BOB, CAROL}
    assert get_room_creators(v12.rv, None) == frozenset()


def message(sender: str = BOB) -> Callable[[Room], Event]:
    return lambda r: r.build("m.room.message", sender, {"body": "hi"})


def drop_create(room: Room) -> None:
    del room.state[("m.room.create", "")]


def swap_create(room: Room) -> None:
    """Replace the create event by another room's."""
    other = Room(room.rv.identifier)
    room.state[("m.room.create", "")] = other.create


def reject_create(room: Room) -> None:
    room.create.internal.rejected_reason = "test"


def unfederated(version: str) -> Room:
    return standard_room(version, members=(ERIN,), create_content={"m.federate": False})


def creators_room(version: str) -> Room:
    """v12 room: creators ALICE and BOB; CAROL is a 100-level admin."""
    room = standard_room(
        version, members=(BOB, CAROL), create_content={"additional_creators": [BOB]}
    )
    room.set_power_levels({CAROL: 100})
    return room


ROOM_LINK = [
    Case("message_with_create_in_state_allowed", ALL, message(), True),
    Case("no_create_event_denied", ALL, message(), False, setup=drop_create, reason="create"),
    Case("create_event_of_another_room_denied", ALL, message(), False, setup=swap_create),
    Case(
        "v12_rejected_create_event_denied",
        versions(12),
        message(),
        False,
        setup=reject_create,
        reason="rejected",
    ),
    Case(
        "v12_room_id_must_be_create_event_id",
        versions(12),
        lambda r: r.build("m.room.message", BOB, {"body": "x"}, room_id="!other"),
        False,
    ),
]

FEDERATE = [
    Case(
        "unfederated_room_denies_remote_join",
        ALL,
        lambda r: r.member_event(BOB, "join"),
        False,
        room=unfederated,
        reason="not federated",
    ),
    Case(
        "unfederated_room_allows_local_users",
        ALL,
        lambda r: r.build("m.room.message", ERIN, {"body": "hi"}),
        True,
        room=unfederated,
    ),
    Case(
        "m_federate_true_allows_remote_join",
        ALL,
        lambda r: r.member_event(BOB, "join"),
        True,
        room=lambda v: standard_room(v, members=(), create_content={"m.federate": True}),
    ),
]

CREATORS = [
    Case(
        "v12_creator_cannot_be_kicked_by_top_admin",
        versions(12),
        lambda r: r.member_event(BOB, "leave", CAROL),
        False,
        room=creators_room,
    ),
    Case(
        "v12_creator_cannot_be_banned_by_top_admin",
        versions(12),
        lambda r: r.member_event(ALICE, "ban", CAROL),
        False,
        room=creators_room,
    ),
    Case(
        "v12_additional_creator_can_ban_top_admin",
        versions(12),
        lambda r: r.member_event(CAROL, "ban", BOB),
        True,
        room=creators_room,
    ),
    Case(
        "v12_creator_can_send_event_with_huge_level",
        versions(12),
        lambda r: r.build("m.room.tombstone", BOB, {"body": "x"}, ""),
        True,
        room=creators_room,
        setup=lambda r: r.set_power_levels({CAROL: 100}, events={"m.room.tombstone": 2**53 - 1}),
    ),
    Case(
        "v12_admin_cannot_send_event_above_level",
        versions(12),
        lambda r: r.build("m.room.tombstone", CAROL, {"body": "x"}, ""),
        False,
        room=creators_room,
        setup=lambda r: r.set_power_levels({CAROL: 100}, events={"m.room.tombstone": 150}),
    ),
    Case(
        # Pre-v12 the creator is only a user with level 100, and can be outranked.
        "v11_creator_can_be_kicked_by_higher_admin",
        versions(11, 11),
        lambda r: r.member_event(ALICE, "leave", CAROL),
        True,
        setup=steps(
            lambda r: r.set_member(CAROL, "join"),
            lambda r: r.set_power_levels({ALICE: 100, CAROL: 101}),
        ),
    ),
    Case(
        "v11_implicit_creator_ignores_content_creator",
        versions(11),
        lambda r: r.member_event(ALICE, "join"),
        True,
        room=lambda v: Room(v, create_content={"creator": BOB}),
    ),
    Case(
        "v10_creator_is_content_creator",
        versions(1, 10),
        lambda r: r.member_event(BOB, "join", prev=[r.create.event_id]),
        True,
        room=lambda v: Room(v, create_content={"creator": BOB}),
    ),
    Case(
        "v12_creator_has_power_without_power_levels_event",
        versions(12),
        lambda r: r.build("m.room.name", BOB, {"name": "x"}, ""),
        True,
        room=lambda v: standard_room(
            v, create_content={"additional_creators": [BOB]}, power_levels=False
        ),
    ),
    Case(
        "non_creator_cannot_send_state_without_power_levels_event",
        ALL,
        lambda r: r.build("m.room.name", BOB, {"name": "x"}, ""),
        False,
        setup=lambda r: r.state.pop(("m.room.power_levels", "")),
    ),
    Case(
        "creator_level_100_without_power_levels_event_pre_v12",
        versions(1, 11),
        lambda r: r.build("m.room.name", ALICE, {"name": "x"}, ""),
        True,
        setup=lambda r: r.state.pop(("m.room.power_levels", "")),
    ),
]


@pytest.mark.parametrize(("case", "version"), params(ROOM_LINK + FEDERATE + CREATORS))
def test_room_and_creator_rule(case: Case, version: str) -> None:
    run_case(case, version)
