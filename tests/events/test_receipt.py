"""Checks on receipt of a PDU (steps 4-6): accepted, rejected, or soft failed.

spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu,
server-server-api.md#rejection, server-server-api.md#soft-failure
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from signedjson.key import generate_signing_key, get_verify_key
from unpaddedbase64 import encode_base64

from homeserver.events.errors import InvalidEventError
from homeserver.events.receipt import (
    ReceiptOutcome,
    ReceiptStatus,
    check_pdu_format_and_signatures,
    check_pdu_on_receipt,
)
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.events.signing import VerifyKeyWithExpiry, sign_event
from tests.events._auth_fixtures import ALICE, ALL, BOB, CAROL, standard_room


@pytest.mark.parametrize("version", ALL)
def test_valid_message_accepted(version: str) -> None:
    room = standard_room(version)
    event = room.build("m.room.message", BOB, {"body": "hi"})
    outcome = check_pdu_on_receipt(room.rv, event, room.events, room.state, room.state)
    assert outcome == ReceiptOutcome.ACCEPTED
    assert outcome.is_accepted and outcome.reason is None


@pytest.mark.parametrize("version", ALL)
def test_ban_evasion_is_soft_failed_not_rejected(version: str) -> None:
    """BOB sends from the DAG before his ban: valid there, but not in the current state."""
    room = standard_room(version)
    state_before = dict(room.state)
    fork_point = room.last_id
    room.set_member(BOB, "ban", sender=ALICE)
    # Built as BOB's server would: citing the state before the ban.
    banned_state = room.state
    room.state = state_before
    event = room.build("m.room.message", BOB, {"body": "still here"}, prev=[fork_point])
    room.state = banned_state

    outcome = check_pdu_on_receipt(room.rv, event, room.events, state_before, room.state)
    assert outcome.status is ReceiptStatus.SOFT_FAILED
    assert outcome.is_soft_failed and not outcome.is_rejected
    assert outcome.reason is not None and "current state" in outcome.reason
    # Without a current state (e.g. backfill) there is nothing to soft-fail against.
    assert check_pdu_on_receipt(room.rv, event, room.events, state_before, None).is_accepted


@pytest.mark.parametrize("version", ALL)
def test_event_failing_state_before_is_rejected(version: str) -> None:
    """Cites BOB's old join, but the state at the event (its prev_events) has him banned."""
    room = standard_room(version)
    event_before_ban = room.build("m.room.message", BOB, {"body": "x"})
    room.set_member(BOB, "ban", sender=ALICE)
    event = room.build("m.room.message", BOB, {"body": "x"})
    event.pdu["auth_events"] = event_before_ban.pdu["auth_events"]

    outcome = check_pdu_on_receipt(room.rv, event, room.events, room.state, room.state)
    assert outcome.status is ReceiptStatus.REJECTED
    assert outcome.reason is not None and outcome.reason.startswith("state before event")


@pytest.mark.parametrize("version", ALL)
def test_event_not_allowed_by_its_auth_events_is_rejected(version: str) -> None:
    """CAROL never joined: her own auth events do not let her speak."""
    room = standard_room(version)
    event = room.build("m.room.message", CAROL, {"body": "x"})
    outcome = check_pdu_on_receipt(room.rv, event, room.events, room.state, room.state)
    assert outcome.is_rejected
    assert outcome.reason is not None and outcome.reason.startswith("auth events")


@pytest.mark.parametrize("version", ALL)
def test_event_citing_rejected_auth_event_is_rejected(version: str) -> None:
    room = standard_room(version)
    event = room.build("m.room.message", BOB, {"body": "x"})
    room.state[("m.room.member", BOB)].internal.rejected_reason = "spoofed"
    outcome = check_pdu_on_receipt(room.rv, event, room.events, room.state, room.state)
    assert outcome.is_rejected
    assert outcome.reason is not None and "was rejected" in outcome.reason


@pytest.mark.parametrize("version", ALL)
def test_event_citing_wrong_auth_events_is_rejected_even_if_state_allows(version: str) -> None:
    room = standard_room(version)
    event = room.build("m.room.message", BOB, {"body": "x"})
    event.pdu["auth_events"] = event.pdu["auth_events"] + [
        room._ref(room.state[("m.room.join_rules", "")].event_id)
    ]
    outcome = check_pdu_on_receipt(room.rv, event, room.events, room.state, room.state)
    assert outcome.is_rejected


def test_v12_create_event_found_from_room_id_or_state_before() -> None:
    room = standard_room("12")
    event = room.build("m.room.message", BOB, {"body": "x"})
    assert room.create.event_id not in event.auth_event_ids
    # From the ID map (keyed by the create event's ID)...
    assert check_pdu_on_receipt(room.rv, event, room.events, room.state, None).is_accepted
    # ...or, failing that, from the state before the event.
    without_create = {k: v for k, v in room.events.items() if v is not room.create}
    assert check_pdu_on_receipt(room.rv, event, without_create, room.state, None).is_accepted
    # With neither there is no create event to authorise against.
    no_state = {k: v for k, v in room.state.items() if k != ("m.room.create", "")}
    assert check_pdu_on_receipt(room.rv, event, without_create, no_state, None).is_rejected


@pytest.mark.parametrize("version", ALL)
def test_create_event_accepted(version: str) -> None:
    room = standard_room(version)
    outcome = check_pdu_on_receipt(room.rv, room.create, {}, {}, None)
    assert outcome.is_accepted


def test_outcomes_compare_by_status_and_reason() -> None:
    assert ReceiptOutcome.rejected("x") == ReceiptOutcome(ReceiptStatus.REJECTED, "x")
    assert ReceiptOutcome.soft_failed("x") != ReceiptOutcome.rejected("x")


# --- steps 1-3, composed from the validation/signing/hashing modules -------------------

SERVER = "a.test"
SIGNING_KEY = generate_signing_key("1")
KEYS = {SERVER: {"ed25519:1": VerifyKeyWithExpiry(get_verify_key(SIGNING_KEY))}}


def _event_id(seed: str) -> str:
    return "$" + encode_base64(hashlib.sha256(seed.encode()).digest(), urlsafe=True)


def signed_message(version: str = "10") -> tuple[dict[str, Any], RoomVersion]:
    room_version = KNOWN_ROOM_VERSIONS[version]
    pdu: dict[str, Any] = {
        "type": "m.room.message",
        "room_id": "!room:a.test",
        "sender": ALICE,
        "content": {"msgtype": "m.text", "body": "hello"},
        "prev_events": [_event_id("prev")],
        "auth_events": [_event_id("auth")],
        "depth": 3,
        "origin_server_ts": 1_700_000_000_000,
    }
    sign_event(pdu, SERVER, SIGNING_KEY, room_version)
    return pdu, room_version


def test_well_signed_pdu_passes_steps_1_to_3() -> None:
    pdu, room_version = signed_message()
    checked = check_pdu_format_and_signatures(pdu, room_version, KEYS)
    assert not checked.redacted_for_bad_hash
    assert checked.event.content["body"] == "hello"


def test_content_hash_mismatch_gives_redacted_event() -> None:
    pdu, room_version = signed_message()
    pdu["content"] = {"msgtype": "m.text", "body": "tampered"}  # not covered by signature
    checked = check_pdu_format_and_signatures(pdu, room_version, KEYS)
    assert checked.redacted_for_bad_hash
    assert checked.event.content == {}


def test_bad_signature_is_dropped() -> None:
    pdu, room_version = signed_message()
    pdu["origin_server_ts"] += 1  # covered by the signature
    with pytest.raises(InvalidEventError):
        check_pdu_format_and_signatures(pdu, room_version, KEYS)


def test_malformed_pdu_is_dropped() -> None:
    pdu, room_version = signed_message()
    pdu["sender"] = "not-a-user"
    with pytest.raises(InvalidEventError):
        check_pdu_format_and_signatures(pdu, room_version, KEYS)
