"""Malformed events and state are denied with AuthError, never a crash.

Property tests: arbitrary JSON in the places the rules read must give "allowed" or
AuthError, whatever the room version.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeserver.events.auth import (
    AuthError,
    auth_types_for_event,
    check_auth_events_selection,
    check_auth_rules,
    get_user_power_level,
)
from homeserver.events.event import Event
from tests.events._auth_fixtures import ALICE, ALL, BOB, CAROL, standard_room

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["50", " -7 ", "join", "invite", "@bob:b.test", BOB, ALICE, "ed25519:0"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(
                st.text(max_size=6),
                st.sampled_from(
                    [
                        "membership",
                        "users",
                        "events",
                        "notifications",
                        "ban",
                        "join_rule",
                        "third_party_invite",
                        "signed",
                        "token",
                        "mxid",
                        "join_authorised_via_users_server",
                        BOB,
                        CAROL,
                    ]
                ),
            ),
            children,
            max_size=5,
        ),
    ),
    max_leaves=12,
)
event_types = st.sampled_from(
    [
        "m.room.create",
        "m.room.member",
        "m.room.power_levels",
        "m.room.join_rules",
        "m.room.third_party_invite",
        "m.room.redaction",
        "m.room.aliases",
        "m.room.message",
    ]
)
state_keys = st.one_of(st.none(), st.sampled_from(["", BOB, CAROL, "b.test"]), json_values)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(version: str, event: Event, state: Any) -> None:
    try:
        check_auth_rules(event.room_version, event, state)
    except AuthError:
        pass


@FUZZ
@given(
    version=st.sampled_from(ALL),
    event_type=event_types,
    sender=st.sampled_from([ALICE, BOB, CAROL]),
    state_key=state_keys,
    content=json_values,
    extra=st.dictionaries(
        st.sampled_from(["redacts", "prev_events", "auth_events", "signatures", "room_id"]),
        json_values,
        max_size=3,
    ),
)
def test_arbitrary_event_never_crashes_the_rules(
    version: str, event_type: str, sender: str, state_key: Any, content: Any, extra: Any
) -> None:
    room = standard_room(version)
    event = room.build(event_type, sender, content, **extra)
    if state_key is not None:
        event.pdu["state_key"] = state_key
    _outcome(version, event, room.state)
    try:
        check_auth_events_selection(room.rv, event, room.events)
    except AuthError:
        pass
    if isinstance(state_key, str | None) and isinstance(content, dict):
        auth_types_for_event(room.rv, event_type, sender, state_key, content)


@FUZZ
@given(
    version=st.sampled_from(ALL),
    pl_content=json_values,
    jr_content=json_values,
    member_content=json_values,
    create_content=json_values,
    event_type=event_types,
    content=json_values,
)
def test_malformed_state_never_crashes_the_rules(
    version: str,
    pl_content: Any,
    jr_content: Any,
    member_content: Any,
    create_content: Any,
    event_type: str,
    content: Any,
) -> None:
    room = standard_room(version)
    room.add("m.room.power_levels", ALICE, pl_content, "")
    room.add("m.room.join_rules", ALICE, jr_content, "")
    room.add("m.room.member", BOB, member_content, BOB)
    room.create.pdu["content"] = create_content
    state_key = BOB if event_type == "m.room.member" else ""
    event = room.build(event_type, BOB, content, state_key)
    _outcome(version, event, room.state)
    get_user_power_level(room.rv, BOB, room.state)


def test_pdu_missing_type_is_denied_not_crashing() -> None:
    room = standard_room("10")
    event = room.build("m.room.message", BOB, {"body": "x"})
    del event.pdu["type"]
    try:
        check_auth_rules(room.rv, event, room.state)
    except AuthError as exc:
        assert "malformed" in exc.reason
    else:
        raise AssertionError("expected AuthError")
