"""The rules for non-membership events: sender joined, send levels, user-owned state keys,
m.room.aliases (v1-v5), m.room.third_party_invite, and redactions (v1-v2 vs v3+).

spec: rooms/fragments/v1-auth-rules.md rules 4, 6-11, rooms/fragments/v3-auth-rules.md,
rooms/v6.md (aliases rule removed), rooms/v11.md (redacts in content),
rooms/fragments/v3-handling-redactions.md
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from homeserver.events.auth import redaction_applies
from homeserver.events.event import Event
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


def send(
    event_type: str, sender: str = BOB, state_key: str | None = None, **content: Any
) -> Callable[[Room], Event]:
    return lambda r: r.build(event_type, sender, content or {"body": "hi"}, state_key)


def mute_bob(room: Room) -> None:
    room.set_power_levels(room.pl_users(bob=-1))


SENDER_JOINED = [
    Case("joined_member_can_send_message", ALL, send("m.room.message"), True),
    Case(
        "kicked_member_cannot_send",
        ALL,
        send("m.room.message"),
        False,
        setup=lambda r: r.set_member(BOB, "leave", sender=ALICE),
        reason="not joined",
    ),
    Case(
        "banned_member_cannot_send",
        ALL,
        send("m.room.message"),
        False,
        setup=lambda r: r.set_member(BOB, "ban", sender=ALICE),
        reason="not joined",
    ),
    Case(
        "invited_user_cannot_send",
        ALL,
        send("m.room.message", CAROL),
        False,
        setup=lambda r: r.set_member(CAROL, "invite", sender=ALICE),
    ),
    Case("never_joined_user_cannot_send", ALL, send("m.room.message", DAVE), False),
    Case(
        "user_who_left_cannot_send",
        ALL,
        send("m.room.message"),
        False,
        setup=lambda r: r.set_member(BOB, "leave"),
    ),
]

LEVELS = [
    Case(
        "muted_user_below_events_default_cannot_send",
        ALL,
        send("m.room.message"),
        False,
        setup=mute_bob,
        reason="below the 0 needed",
    ),
    Case(
        "events_default_raised_mutes_everyone_below",
        ALL,
        send("m.room.message"),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(), events_default=10),
    ),
    Case(
        "per_type_level_overrides_events_default",
        ALL,
        send("m.reaction"),
        True,
        setup=lambda r: r.set_power_levels(
            r.pl_users(), events_default=10, events={"m.reaction": 0}
        ),
    ),
    Case(
        "per_type_level_above_sender_denied",
        ALL,
        send("m.room.encrypted"),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(), events={"m.room.encrypted": 5}),
    ),
    Case(
        "state_event_needs_state_default",
        ALL,
        send("m.room.topic", state_key="", topic="x"),
        False,
        reason="50 needed",
    ),
    Case(
        "state_default_lowered_allows_state",
        ALL,
        send("m.room.topic", state_key="", topic="x"),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(), state_default=0),
    ),
    Case(
        "per_type_state_level_overrides_state_default",
        ALL,
        send("m.room.topic", state_key="", topic="x"),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(), events={"m.room.topic": 0}),
    ),
    Case(
        "string_levels_in_state_honoured_before_v10",
        versions(1, 9),
        send("m.room.topic", state_key="", topic="x"),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(), state_default="0"),
    ),
    Case(
        "string_levels_in_state_ignored_from_v10",
        versions(10),
        send("m.room.topic", state_key="", topic="x"),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(), state_default="0"),
    ),
    Case(
        "admin_can_send_any_state",
        ALL,
        send("m.room.name", ALICE, state_key="", name="x"),
        True,
    ),
    Case(
        "users_default_grants_level",
        ALL,
        send("m.room.topic", state_key="", topic="x"),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(), users_default=50),
    ),
]

STATE_KEYS = [
    Case(
        "state_key_of_own_user_id_allowed",
        ALL,
        send("m.custom", state_key=BOB, x=1),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(), state_default=0),
    ),
    Case(
        "state_key_of_other_user_id_denied",
        ALL,
        send("m.custom", state_key=CAROL, x=1),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(), state_default=0),
        reason="another user",
    ),
    Case(
        "admin_cannot_set_state_keyed_by_other_user",
        ALL,
        send("m.custom", ALICE, state_key=BOB, x=1),
        False,
    ),
    Case(
        "state_key_not_starting_with_at_unrestricted",
        ALL,
        send("m.custom", state_key="bob", x=1),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(), state_default=0),
    ),
]

ALIASES = [
    Case(
        "aliases_by_server_in_state_key_allowed_v1_to_v5",
        versions(1, 5),
        send("m.room.aliases", CAROL, state_key="c.test", aliases=["#a:c.test"]),
        True,
    ),
    Case(
        "aliases_by_other_server_denied_v1_to_v5",
        versions(1, 5),
        send("m.room.aliases", BOB, state_key="c.test", aliases=["#a:c.test"]),
        False,
        reason="sender's server",
    ),
    Case(
        "aliases_without_state_key_denied_v1_to_v5",
        versions(1, 5),
        send("m.room.aliases", BOB, aliases=["#a:b.test"]),
        False,
    ),
    Case(
        "aliases_is_ordinary_state_from_v6",
        versions(6),
        send("m.room.aliases", CAROL, state_key="c.test", aliases=["#a:c.test"]),
        False,
        reason="not joined",
    ),
    Case(
        "aliases_needs_state_level_from_v6",
        versions(6),
        send("m.room.aliases", BOB, state_key="b.test", aliases=["#a:b.test"]),
        False,
        reason="50 needed",
    ),
]

THIRD_PARTY_INVITE_EVENT = [
    Case(
        "third_party_invite_event_at_invite_level_allowed",
        ALL,
        send("m.room.third_party_invite", state_key="tok", display_name="x"),
        True,
    ),
    Case(
        "third_party_invite_event_below_invite_level_denied",
        ALL,
        send("m.room.third_party_invite", state_key="tok", display_name="x"),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(), invite=10),
        reason="invite level",
    ),
    Case(
        # Only the invite level matters, not the state default (rule 7 returns first).
        "third_party_invite_event_ignores_state_default",
        ALL,
        send("m.room.third_party_invite", state_key="tok", display_name="x"),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(), state_default=100),
    ),
    Case(
        "third_party_invite_event_by_non_member_denied",
        ALL,
        send("m.room.third_party_invite", CAROL, state_key="tok", display_name="x"),
        False,
    ),
]


def redaction(
    sender: str, target: Callable[[Room], str], in_content: bool = False
) -> Callable[[Room], Event]:
    def make(room: Room) -> Event:
        target_id = target(room)
        if in_content:
            return room.build("m.room.redaction", sender, {"redacts": target_id})
        return room.build("m.room.redaction", sender, {}, redacts=target_id)

    return make


def alice_message(room: Room) -> str:
    return room.add("m.room.message", ALICE, {"body": "hi"}).event_id


def bob_message(room: Room) -> str:
    return room.add("m.room.message", BOB, {"body": "hi"}).event_id


REDACTIONS = [
    Case(
        "v1_v2_redacting_own_servers_event_allowed",
        versions(1, 2),
        redaction(BOB, bob_message),
        True,
    ),
    Case(
        "v1_v2_redacting_other_servers_event_below_redact_level_denied",
        versions(1, 2),
        redaction(BOB, alice_message),
        False,
        reason="other servers",
    ),
    Case(
        "v1_v2_redact_level_allows_redacting_anything",
        versions(1, 2),
        redaction(BOB, alice_message),
        True,
        setup=lambda r: r.set_power_levels(r.pl_users(bob=50)),
    ),
    Case(
        "v1_v2_redaction_without_target_denied",
        versions(1, 2),
        lambda r: r.build("m.room.redaction", BOB, {}),
        False,
    ),
    Case(
        "v3_plus_redaction_always_passes_auth",
        versions(3),
        redaction(BOB, alice_message, in_content=True),
        True,
    ),
    Case(
        "v3_plus_redaction_subject_to_send_level",
        versions(3),
        redaction(BOB, alice_message, in_content=True),
        False,
        setup=lambda r: r.set_power_levels(r.pl_users(), events={"m.room.redaction": 10}),
    ),
    Case(
        "redaction_by_non_member_denied",
        ALL,
        redaction(CAROL, alice_message),
        False,
    ),
]


@pytest.mark.parametrize(
    ("case", "version"),
    params(SENDER_JOINED + LEVELS + STATE_KEYS + ALIASES + THIRD_PARTY_INVITE_EVENT + REDACTIONS),
)
def test_auth_rule(case: Case, version: str) -> None:
    run_case(case, version)


@pytest.mark.parametrize("version", ALL)
def test_redaction_of_own_servers_event_applies(version: str) -> None:
    room = standard_room(version)
    target = room.add("m.room.message", BOB, {"body": "x"})
    red = redaction(BOB, lambda r: target.event_id, in_content=True)(room)
    if not room.rv.redacts_in_content:
        red.pdu["redacts"] = target.event_id
    assert red.redacts == target.event_id
    assert redaction_applies(room.rv, red, target, room.state)


@pytest.mark.parametrize("version", versions(3))
def test_redaction_of_other_servers_event_needs_redact_level_v3_plus(version: str) -> None:
    room = standard_room(version)
    target = room.add("m.room.message", ALICE, {"body": "x"})
    red = room.build("m.room.redaction", BOB, {"redacts": target.event_id}, redacts=target.event_id)
    assert not redaction_applies(room.rv, red, target, room.state)
    room.set_power_levels(room.pl_users(bob=50))
    assert redaction_applies(room.rv, red, target, room.state)


@pytest.mark.parametrize("version", versions(11))
def test_v11_redacts_is_read_from_content_only(version: str) -> None:
    room = standard_room(version)
    target = room.add("m.room.message", BOB, {"body": "x"})
    top_level_only = room.build("m.room.redaction", BOB, {}, redacts=target.event_id)
    assert top_level_only.redacts is None
    assert not redaction_applies(room.rv, top_level_only, target, room.state)
    in_content = room.build("m.room.redaction", BOB, {"redacts": target.event_id})
    assert redaction_applies(room.rv, in_content, target, room.state)


def test_redaction_never_applies_across_rooms() -> None:
    room, other = standard_room("10"), standard_room("10")
    target = other.add("m.room.message", BOB, {"body": "x"})
    red = room.build("m.room.redaction", ALICE, {}, redacts=target.event_id)
    assert not redaction_applies(room.rv, red, target, room.state)
