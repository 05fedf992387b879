"""Content hashes, reference hashes and event IDs (server-server-api.md#signing-events)."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import pytest

from homeserver.events.errors import InvalidEventError
from homeserver.events.format import event_from_pdu
from homeserver.events.hashing import (
    add_content_hash,
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
)
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.identifiers import is_valid_event_id, is_valid_hash_room_id

V1, V3, V4, V11, V12 = (KNOWN_ROOM_VERSIONS[v] for v in ("1", "3", "4", "11", "12"))


def message_event(**overrides: Any) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "type": "m.room.message",
        "room_id": "!r:example.org",
        "sender": "@u:example.org",
        "origin_server_ts": 1000,
        "depth": 2,
        "prev_events": [],
        "auth_events": [],
        "content": {"body": "hi", "msgtype": "m.text"},
        "hashes": {"sha256": "old"},
        "signatures": {"example.org": {"ed25519:1": "sig"}},
        "unsigned": {"age": 10},
    }
    pdu.update(overrides)
    return pdu


def test_content_hash_matches_hand_written_canonical_json() -> None:
    pdu = {"b": "é", "a": 1, "hashes": {"sha256": "x"}, "signatures": {}, "unsigned": {"age": 1}}
    assert compute_content_hash(pdu) == hashlib.sha256('{"a":1,"b":"é"}'.encode()).digest()


@pytest.mark.parametrize("key", ["unsigned", "signatures", "hashes"])
def test_content_hash_ignores_keys_that_change_in_transit(key: str) -> None:
    pdu = message_event()
    changed = message_event(**{key: {"anything": {"else": "x"}}})
    assert compute_content_hash(pdu) == compute_content_hash(changed)


@pytest.mark.parametrize(
    "change", [{"content": {"body": "bye"}}, {"origin": "example.org"}, {"depth": 3}]
)
def test_content_hash_covers_everything_else(change: dict[str, Any]) -> None:
    assert compute_content_hash(message_event()) != compute_content_hash(message_event(**change))


def test_add_content_hash_keeps_other_algorithms_and_does_not_mutate_shared_dict() -> None:
    shared = {"sha256": "old", "blake3": "other"}
    pdu = message_event(hashes=shared)
    add_content_hash(pdu)
    assert shared == {"sha256": "old", "blake3": "other"}
    assert pdu["hashes"]["blake3"] == "other"
    expected = base64.b64encode(compute_content_hash(pdu)).decode().rstrip("=")
    assert pdu["hashes"]["sha256"] == expected
    assert check_content_hash(pdu)


def test_check_content_hash_accepts_padded_base64() -> None:
    pdu = message_event()
    pdu["hashes"] = {"sha256": base64.b64encode(compute_content_hash(pdu)).decode()}
    assert pdu["hashes"]["sha256"].endswith("=")
    assert check_content_hash(pdu)


@pytest.mark.parametrize(
    "hashes",
    [
        None,
        "string",
        {},
        {"sha256": 5},
        {"sha256": "!!!notbase64"},
        {"sha256": "é"},
        {"sha256": "abcde"},
    ],
    ids=repr,
)
def test_check_content_hash_is_false_for_missing_or_malformed_hash(hashes: object) -> None:
    pdu = message_event(hashes=hashes)
    if hashes is None:
        del pdu["hashes"]
    assert check_content_hash(pdu) is False


def test_check_content_hash_detects_modified_content() -> None:
    pdu = message_event()
    add_content_hash(pdu)
    pdu["content"]["body"] = "tampered"
    assert not check_content_hash(pdu)


# --- reference hashes and event IDs -----------------------------------------------------


def test_reference_hash_matches_hand_written_redacted_canonical_json() -> None:
    pdu = message_event(origin="example.org")
    # v11 redaction: content emptied, origin/unsigned/signatures dropped, hashes kept.
    expected = (
        '{"auth_events":[],"content":{},"depth":2,"hashes":{"sha256":"old"},'
        '"origin_server_ts":1000,"prev_events":[],"room_id":"!r:example.org",'
        '"sender":"@u:example.org","type":"m.room.message"}'
    )
    assert compute_reference_hash(pdu, V11) == hashlib.sha256(expected.encode()).digest()


@pytest.mark.parametrize(
    "change",
    [
        {"signatures": {}},
        {"unsigned": {"age": 99999}},
        {"content": {"body": "different body, same redacted form"}},
    ],
)
def test_reference_hash_ignores_what_redaction_and_signing_strip(change: dict[str, Any]) -> None:
    assert compute_reference_hash(message_event(), V4) == compute_reference_hash(
        message_event(**change), V4
    )


def test_reference_hash_covers_the_content_hash() -> None:
    assert compute_reference_hash(message_event(), V4) != compute_reference_hash(
        message_event(hashes={"sha256": "new"}), V4
    )


def test_v1_event_id_is_the_event_id_field() -> None:
    assert compute_event_id(message_event(event_id="$abc:example.org"), V1) == "$abc:example.org"


@pytest.mark.parametrize("event_id", [None, 5, ["$a:b"]])
def test_v1_event_id_must_be_a_string(event_id: object) -> None:
    pdu = message_event(event_id=event_id)
    if event_id is None:
        del pdu["event_id"]
    with pytest.raises(InvalidEventError, match="event_id"):
        compute_event_id(pdu, V1)


def _event_with_base64_specials() -> dict[str, Any]:
    # Find an event whose hash needs '+' or '/' in standard base64, so v3 and v4 differ.
    for depth in range(1000):
        pdu = message_event(depth=depth)
        encoded = base64.b64encode(compute_reference_hash(pdu, V3)).decode()
        if "+" in encoded or "/" in encoded:
            return pdu
    raise AssertionError("no suitable event found")


def test_v3_event_id_is_standard_and_v4_url_safe_unpadded_base64() -> None:
    pdu = _event_with_base64_specials()
    digest = compute_reference_hash(pdu, V3)
    v3_id = compute_event_id(pdu, V3)
    v4_id = compute_event_id(pdu, V4)
    assert v3_id == "$" + base64.b64encode(digest).decode().rstrip("=")
    assert v4_id == "$" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert v3_id != v4_id and len(v3_id) == len(v4_id) == 44
    assert is_valid_event_id(v3_id, V3) and not is_valid_event_id(v3_id, V4)
    assert is_valid_event_id(v4_id, V4)


def test_event_id_does_not_depend_on_signatures_or_unsigned() -> None:
    pdu = message_event()
    stripped = copy.deepcopy(pdu)
    del stripped["signatures"], stripped["unsigned"]
    stripped["signatures"] = {}
    assert compute_event_id(pdu, V12) == compute_event_id(stripped, V12)


def test_v12_create_event_id_gives_the_room_id() -> None:
    create = {
        "type": "m.room.create",
        "state_key": "",
        "sender": "@u:example.org",
        "origin_server_ts": 1,
        "depth": 1,
        "prev_events": [],
        "auth_events": [],
        "content": {"room_version": "12"},
        "hashes": {},
        "signatures": {},
    }
    add_content_hash(create)
    event = event_from_pdu(create, V12)
    assert event.event_id == compute_event_id(create, V12)
    assert event.room_id == "!" + event.event_id[1:]
    assert is_valid_hash_room_id(event.room_id)
