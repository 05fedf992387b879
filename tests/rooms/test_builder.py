"""Building local events: references, auth events, hashes and signatures."""

from __future__ import annotations

import pytest
from signedjson.key import generate_signing_key, get_verify_key

from homeserver.events.errors import InvalidEventError
from homeserver.events.hashing import check_content_hash, compute_event_id
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import VerifyKeyWithExpiry, verify_event_signatures
from homeserver.rooms.builder import EventDraft, RoomPosition, build_local_event

KEY = generate_signing_key("a_test")
SERVER = "example.org"
ALICE = "@alice:example.org"


def eid(name: str) -> str:
    """A well-formed v4+ event ID (43 URL-safe base64 characters) named ``name``."""
    return "$" + name.ljust(43, "A")


STATE = {
    ("m.room.create", ""): eid("create"),
    ("m.room.power_levels", ""): eid("pl"),
    ("m.room.join_rules", ""): eid("jr"),
    ("m.room.member", ALICE): eid("alice_join"),
    ("m.room.member", "@bob:example.org"): eid("bob_join"),
    ("m.room.topic", ""): eid("topic"),
}


def build(version: str = "10", **draft_fields: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {
        "room_id": "!room:example.org",
        "event_type": "m.room.message",
        "sender": ALICE,
        "content": {"msgtype": "m.text", "body": "hello"},
    }
    fields.update(draft_fields)
    return build_local_event(
        KNOWN_ROOM_VERSIONS[version],
        EventDraft(**fields),  # type: ignore[arg-type]
        RoomPosition(prev_event_ids=[eid("a"), eid("b")], max_prev_depth=41, state_before=STATE),
        server_name=SERVER,
        signing_key=KEY,
        origin_server_ts=1234,
    )


def test_message_follows_the_extremities_one_level_deeper() -> None:
    event = build()
    assert event.prev_event_ids == [eid("a"), eid("b")]
    assert event.depth == 42
    assert event.origin_server_ts == 1234


def test_message_auth_events_are_create_power_levels_and_sender_membership() -> None:
    assert sorted(build().auth_event_ids) == sorted([eid("alice_join"), eid("create"), eid("pl")])


def test_v12_auth_events_leave_out_the_create_event() -> None:
    assert sorted(build("12", room_id="!" + "A" * 43).auth_event_ids) == sorted(
        [eid("alice_join"), eid("pl")]
    )


def test_event_is_hashed_signed_and_identified_by_its_reference_hash() -> None:
    event = build()
    assert check_content_hash(event.pdu)
    assert event.event_id == compute_event_id(event.pdu, event.room_version)
    keys = {SERVER: {"ed25519:a_test": VerifyKeyWithExpiry(get_verify_key(KEY))}}
    verify_event_signatures(event.pdu, event.room_version, keys)


def test_v12_create_event_has_no_room_id_and_names_the_room() -> None:
    event = build("12", event_type="m.room.create", state_key="", content={"room_version": "12"})
    assert "room_id" not in event.pdu
    assert event.room_id == "!" + event.event_id[1:]


def test_v11_redaction_keeps_redacts_in_content_only() -> None:
    event = build(
        "11", event_type="m.room.redaction", content={"redacts": eid("x")}, redacts=eid("x")
    )
    assert "redacts" not in event.pdu and event.redacts == eid("x")
    old = build("10", event_type="m.room.redaction", content={}, redacts=eid("x"))
    assert old.pdu["redacts"] == eid("x") and old.redacts == eid("x")


def test_oversized_event_is_refused() -> None:
    with pytest.raises(InvalidEventError):
        build(content={"body": "x" * 70_000})


def test_rooms_v1_and_v2_cannot_get_new_local_events() -> None:
    with pytest.raises(ValueError):
        build("1")
