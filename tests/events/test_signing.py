"""Which servers must sign an event, and how their signatures are checked.

spec: server-server-api.md#validating-hashes-and-signatures-on-received-events,
rooms/fragments/v5-signing-requirements.md
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from signedjson.key import generate_signing_key, get_verify_key

from homeserver.events.errors import InvalidEventError
from homeserver.events.hashing import check_content_hash, compute_event_id
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import (
    VerifyKeyWithExpiry,
    required_signature_servers,
    sign_event,
    sign_event_and_compute_id,
    verify_event_signatures,
)

RV = KNOWN_ROOM_VERSIONS
KEY_A = generate_signing_key("a1")
KEY_B = generate_signing_key("b1")
KEYS = {
    "a.example": {"ed25519:a1": VerifyKeyWithExpiry(get_verify_key(KEY_A))},
    "b.example": {"ed25519:b1": VerifyKeyWithExpiry(get_verify_key(KEY_B))},
}


def member_join(**content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.member",
        "state_key": "@alice:a.example",
        "room_id": "!r:b.example",
        "sender": "@alice:a.example",
        "origin_server_ts": 5000,
        "depth": 3,
        "prev_events": [],
        "auth_events": [],
        "content": {"membership": "join", **content},
        "hashes": {},
        "signatures": {},
    }


def signed_message(version: str = "10", **overrides: Any) -> dict[str, Any]:
    pdu = member_join() | {"type": "m.room.message", "content": {"body": "x"}}
    pdu.pop("state_key")
    pdu.update(overrides)
    sign_event(pdu, "a.example", KEY_A, RV[version])
    return pdu


# --- required servers ------------------------------------------------------------------


def test_v1_requires_the_event_id_server_too() -> None:
    pdu = member_join() | {"event_id": "$x:b.example"}
    assert required_signature_servers(pdu, RV["1"]) == {"a.example", "b.example"}
    assert required_signature_servers(pdu | {"event_id": "$x:a.example"}, RV["2"]) == {"a.example"}


@pytest.mark.parametrize("version", ["3", "7", "12"])
def test_v3_and_later_require_only_the_sender_server(version: str) -> None:
    assert required_signature_servers(member_join(), RV[version]) == {"a.example"}


@pytest.mark.parametrize(("version", "required"), [("7", False), ("8", True), ("12", True)])
def test_restricted_join_requires_the_authorising_server_from_v8(
    version: str, required: bool
) -> None:
    pdu = member_join(join_authorised_via_users_server="@admin:b.example")
    expected = {"a.example", "b.example"} if required else {"a.example"}
    assert required_signature_servers(pdu, RV[version]) == expected


@pytest.mark.parametrize(
    "pdu",
    [
        member_join(join_authorised_via_users_server="not a user id"),
        member_join(join_authorised_via_users_server=5),
        member_join(join_authorised_via_users_server="@admin:b.example")
        | {"type": "m.room.message"},
    ],
    ids=["invalid-user", "non-string", "not-member"],
)
def test_authorising_server_only_required_for_member_events_naming_a_user(
    pdu: dict[str, Any],
) -> None:
    assert required_signature_servers(pdu, RV["9"]) == {"a.example"}


@pytest.mark.parametrize("sender", [None, 5, "alice", "@alice", "@alice:bad_host"])
def test_malformed_sender_is_an_invalid_event(sender: object) -> None:
    with pytest.raises(InvalidEventError, match="sender"):
        required_signature_servers(member_join() | {"sender": sender}, RV["10"])


def test_v1_without_event_id_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEventError, match="event_id"):
        required_signature_servers(member_join(), RV["1"])


@pytest.mark.parametrize("membership", ["join", "leave", "invite"])
def test_authorising_server_required_whatever_the_membership(membership: str) -> None:
    # Auth rule 4.2 applies to any member event carrying the key.
    pdu = member_join(join_authorised_via_users_server="@admin:b.example", membership=membership)
    assert required_signature_servers(pdu, RV["9"]) == {"a.example", "b.example"}


# --- signing ---------------------------------------------------------------------------


def test_sign_event_adds_to_existing_signatures_without_mutating_them() -> None:
    pdu = signed_message()
    first = pdu["signatures"]
    snapshot = copy.deepcopy(first)
    sign_event(pdu, "b.example", KEY_B, RV["10"])
    assert first == snapshot
    assert set(pdu["signatures"]) == {"a.example", "b.example"}
    assert check_content_hash(pdu)
    verify_event_signatures(pdu, RV["10"], KEYS)


@pytest.mark.parametrize("version", ["1", "3", "4", "11", "12"])
def test_sign_event_and_compute_id_matches_compute_event_id(version: str) -> None:
    pdu = member_join() | {"event_id": "$e:a.example"}
    event_id = sign_event_and_compute_id(pdu, "a.example", KEY_A, RV[version])
    assert event_id == compute_event_id(pdu, RV[version])
    verify_event_signatures(pdu, RV[version], KEYS)


def test_signature_depends_on_room_version_redaction_rules() -> None:
    v10 = member_join() | {"origin": "a.example"}
    v11 = copy.deepcopy(v10)
    sign_event(v10, "a.example", KEY_A, RV["10"])
    sign_event(v11, "a.example", KEY_A, RV["11"])
    # v11 redaction drops ``origin``, so a different byte string is signed.
    assert v10["signatures"] != v11["signatures"]
    with pytest.raises(InvalidEventError):
        verify_event_signatures(v10, RV["11"], KEYS)


# --- verification ----------------------------------------------------------------------


def test_restricted_join_needs_the_authorising_server_signature() -> None:
    pdu = member_join(join_authorised_via_users_server="@admin:b.example")
    sign_event(pdu, "a.example", KEY_A, RV["9"])
    with pytest.raises(InvalidEventError, match="not signed by b.example"):
        verify_event_signatures(pdu, RV["9"], KEYS)
    sign_event(pdu, "b.example", KEY_B, RV["9"])
    verify_event_signatures(pdu, RV["9"], KEYS)


def test_missing_signature_from_sender_server_fails() -> None:
    pdu = signed_message()
    pdu["signatures"] = {"b.example": pdu["signatures"]["a.example"]}
    with pytest.raises(InvalidEventError, match="not signed by a.example"):
        verify_event_signatures(pdu, RV["10"], KEYS)


def test_signatures_with_unknown_keys_or_algorithms_are_skipped() -> None:
    pdu = signed_message()
    pdu["signatures"]["a.example"] |= {"ed25519:unknown": "AAAA", "curve25519:a1": "!!"}
    verify_event_signatures(pdu, RV["10"], KEYS)


def test_only_unknown_keys_means_no_valid_signature() -> None:
    pdu = signed_message()
    with pytest.raises(InvalidEventError, match="known, valid key"):
        verify_event_signatures(pdu, RV["10"], {"a.example": {}})


def test_every_known_key_signature_must_verify() -> None:
    other = generate_signing_key("a2")
    pdu = signed_message()
    pdu["signatures"]["a.example"]["ed25519:a2"] = pdu["signatures"]["a.example"]["ed25519:a1"]
    keys = {
        "a.example": KEYS["a.example"] | {"ed25519:a2": VerifyKeyWithExpiry(get_verify_key(other))}
    }
    with pytest.raises(InvalidEventError, match="a.example/ed25519:a2 does not verify"):
        verify_event_signatures(pdu, RV["10"], keys)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [(5, "not a string"), ("é", "not valid base64"), ("AAAA", "does not verify")],
)
def test_malformed_signatures_fail(signature: object, reason: str) -> None:
    pdu = signed_message()
    pdu["signatures"]["a.example"]["ed25519:a1"] = signature
    with pytest.raises(InvalidEventError, match=reason):
        verify_event_signatures(pdu, RV["10"], KEYS)


@pytest.mark.parametrize("signatures", [None, "x", {"a.example": "x"}])
def test_malformed_signatures_object_fails(signatures: object) -> None:
    pdu = signed_message() | {"signatures": signatures}
    with pytest.raises(InvalidEventError):
        verify_event_signatures(pdu, RV["10"], KEYS)


def _keys_valid_until(ts: int) -> dict[str, dict[str, VerifyKeyWithExpiry]]:
    return {"a.example": {"ed25519:a1": VerifyKeyWithExpiry(get_verify_key(KEY_A), ts)}}


@pytest.mark.parametrize("version", ["5", "12"])
def test_from_v5_a_key_expired_before_origin_server_ts_does_not_count(version: str) -> None:
    pdu = signed_message(version)  # origin_server_ts 5000
    with pytest.raises(InvalidEventError, match="known, valid key"):
        verify_event_signatures(pdu, RV[version], _keys_valid_until(4999))
    verify_event_signatures(pdu, RV[version], _keys_valid_until(5000))


def test_before_v5_key_expiry_is_not_enforced() -> None:
    pdu = signed_message("4")
    verify_event_signatures(pdu, RV["4"], _keys_valid_until(1))


def test_key_validity_needs_an_integer_origin_server_ts() -> None:
    pdu = signed_message("5")
    pdu["origin_server_ts"] = "5000"
    with pytest.raises(InvalidEventError, match="origin_server_ts"):
        verify_event_signatures(pdu, RV["5"], KEYS)
