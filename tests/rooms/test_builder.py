"""Building local events: references, auth events, hashes and signatures."""

from __future__ import annotations

import copy
import hashlib
import re

import pytest
from signedjson.key import generate_signing_key, get_verify_key
from unpaddedbase64 import encode_base64

from homeserver.events.canonical import encode_canonical_json
from homeserver.events.errors import InvalidEventError
from homeserver.events.event import Event
from homeserver.events.format import event_from_pdu
from homeserver.events.hashing import (
    check_content_hash,
    compute_event_id,
    compute_reference_hash,
    reference_hashes,
)
from homeserver.events.redaction import prune_event_dict
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


def test_built_event_carries_its_canonical_json_encoded_once() -> None:
    event = build()
    assert event.canonical_json == encode_canonical_json(event.pdu)
    assert event.canonical_json is event.canonical_json


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


# --- rooms v1/v2: the V1 event format (spec: rooms/v1.md#event-format) ---------------

V1_STATE = {
    key: f"${name}:example.org"
    for key, name in [
        (("m.room.create", ""), "create"),
        (("m.room.power_levels", ""), "pl"),
        (("m.room.join_rules", ""), "jr"),
        (("m.room.member", ALICE), "alice_join"),
        (("m.room.member", "@bob:example.org"), "bob_join"),
        (("m.room.topic", ""), "topic"),
    ]
}
V1_PREV = ["$a:example.org", "$b:other.example"]


def v1_hashes(event_id: str) -> dict[str, str]:
    """A distinct, well-formed reference hash for each ID."""
    return {"sha256": encode_base64(hashlib.sha256(event_id.encode()).digest())}


def build_v1(version: str = "1", **draft_fields: object) -> Event:
    fields: dict[str, object] = {
        "room_id": "!room:example.org",
        "event_type": "m.room.message",
        "sender": ALICE,
        "content": {"msgtype": "m.text", "body": "hello"},
    }
    fields.update(draft_fields)
    known = [*V1_STATE.values(), *V1_PREV]
    return build_local_event(
        KNOWN_ROOM_VERSIONS[version],
        EventDraft(**fields),  # type: ignore[arg-type]
        RoomPosition(
            prev_event_ids=V1_PREV,
            max_prev_depth=41,
            state_before=V1_STATE,
            reference_hashes={event_id: v1_hashes(event_id) for event_id in known},
        ),
        server_name=SERVER,
        signing_key=KEY,
        origin_server_ts=1234,
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_v1_format_event_carries_an_id_chosen_by_our_server(version: str) -> None:
    event = build_v1(version)
    assert re.fullmatch(r"\$[A-Za-z0-9]{24}:example\.org", event.event_id)
    assert event.pdu["event_id"] == event.event_id
    assert event.pdu["origin"] == SERVER
    # Read back from the wire form, the event keeps its ID (it is not a hash).
    assert event_from_pdu(copy.deepcopy(event.pdu), event.room_version).event_id == event.event_id
    assert build_v1(version).event_id != event.event_id


@pytest.mark.parametrize("version", ["1", "2"])
def test_v1_format_references_are_id_and_reference_hash_pairs(version: str) -> None:
    event = build_v1(version)
    assert event.pdu["prev_events"] == [[i, v1_hashes(i)] for i in V1_PREV]
    # A message's auth events: create, power levels, the sender's membership (sorted).
    auth_ids = ["$alice_join:example.org", "$create:example.org", "$pl:example.org"]
    assert event.pdu["auth_events"] == [[i, v1_hashes(i)] for i in auth_ids]
    assert event.prev_event_ids == V1_PREV
    assert event.auth_event_ids == auth_ids
    assert event.depth == 42


@pytest.mark.parametrize("version", ["1", "2"])
def test_v1_format_event_is_hashed_and_signed_including_its_id(version: str) -> None:
    event = build_v1(version)
    assert check_content_hash(event.pdu)
    keys = {SERVER: {"ed25519:a_test": VerifyKeyWithExpiry(get_verify_key(KEY))}}
    verify_event_signatures(event.pdu, event.room_version, keys)
    # The ID is covered by the signature: another ID breaks it.
    forged = copy.deepcopy(event.pdu)
    forged["event_id"] = "$forged:example.org"
    with pytest.raises(InvalidEventError):
        verify_event_signatures(forged, event.room_version, keys)


def test_v1_format_redaction_keeps_redacts_at_the_top_level() -> None:
    event = build_v1(event_type="m.room.redaction", content={}, redacts="$a:example.org")
    assert event.pdu["redacts"] == "$a:example.org" and event.redacts == "$a:example.org"


def test_v1_chain_references_the_real_reference_hash_of_the_previous_event() -> None:
    room_version = KNOWN_ROOM_VERSIONS["1"]
    create = build_local_event(
        room_version,
        EventDraft("!room:example.org", "m.room.create", ALICE, {"creator": ALICE}, state_key=""),
        RoomPosition(prev_event_ids=[], max_prev_depth=0, state_before={}),
        server_name=SERVER,
        signing_key=KEY,
        origin_server_ts=1,
    )
    assert create.pdu["prev_events"] == [] and create.pdu["auth_events"] == []
    key = ("m.room.create", "")
    join = build_local_event(
        room_version,
        EventDraft("!room:example.org", "m.room.member", ALICE, {"membership": "join"}, ALICE),
        RoomPosition(
            prev_event_ids=[create.event_id],
            max_prev_depth=create.depth,
            state_before={key: create.event_id},
            reference_hashes={create.event_id: reference_hashes(create.pdu, room_version)},
        ),
        server_name=SERVER,
        signing_key=KEY,
        origin_server_ts=2,
    )
    expected = encode_base64(compute_reference_hash(create.pdu, room_version))
    assert join.pdu["prev_events"] == [[create.event_id, {"sha256": expected}]]
    assert join.pdu["auth_events"] == [[create.event_id, {"sha256": expected}]]
    # Redaction leaves the reference hash unchanged, so it still matches a redacted copy.
    redacted = prune_event_dict(create.pdu, room_version)
    assert encode_base64(compute_reference_hash(redacted, room_version)) == expected


def test_v1_format_needs_the_reference_hash_of_every_event_it_points_at() -> None:
    with pytest.raises(ValueError, match=r"\$a:example\.org"):
        build_local_event(
            KNOWN_ROOM_VERSIONS["2"],
            EventDraft("!room:example.org", "m.room.message", ALICE, {"body": "x"}),
            RoomPosition(prev_event_ids=["$a:example.org"], max_prev_depth=1, state_before={}),
            server_name=SERVER,
            signing_key=KEY,
            origin_server_ts=1,
        )
