"""Every test vector of appendices.md "Cryptographic Test Vectors", byte for byte.

The event-signing vectors use the original (room version 1) redaction algorithm:
they keep ``origin``, which v11 redaction drops.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from signedjson.key import decode_signing_key_base64, get_verify_key
from signedjson.sign import sign_json
from unpaddedbase64 import decode_base64

from homeserver.events.canonical import encode_canonical_json
from homeserver.events.errors import InvalidEventError
from homeserver.events.hashing import check_content_hash, compute_content_hash
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.events.signing import VerifyKeyWithExpiry, sign_event, verify_event_signatures

SIGNING_KEY_SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
SERVER_NAME = "domain"
KEY_ID = "ed25519:1"
V1 = KNOWN_ROOM_VERSIONS["1"]
# The minimal event has no ``event_id``, which v1/v2 require for verification; v3 has
# the same redaction algorithm and only needs the sender's signature.
V3 = KNOWN_ROOM_VERSIONS["3"]


@pytest.fixture
def signing_key() -> Any:
    return decode_signing_key_base64("ed25519", "1", SIGNING_KEY_SEED)


@pytest.fixture
def keys(signing_key: Any) -> dict[str, dict[str, VerifyKeyWithExpiry]]:
    return {SERVER_NAME: {KEY_ID: VerifyKeyWithExpiry(get_verify_key(signing_key))}}


def test_signing_key_seed_is_32_bytes_and_gives_key_id_ed25519_1(signing_key: Any) -> None:
    assert len(decode_base64(SIGNING_KEY_SEED)) == 32
    assert f"{signing_key.alg}:{signing_key.version}" == KEY_ID


# --- JSON signing ----------------------------------------------------------------------

EMPTY_SIGNATURE = (
    "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
)
DATA_SIGNATURE = (
    "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({}, {"signatures": {"domain": {KEY_ID: EMPTY_SIGNATURE}}}),
        (
            {"one": 1, "two": "Two"},
            {"one": 1, "signatures": {"domain": {KEY_ID: DATA_SIGNATURE}}, "two": "Two"},
        ),
    ],
    ids=["empty-object", "data-object"],
)
def test_json_signing_vectors(
    signing_key: Any, obj: dict[str, Any], expected: dict[str, Any]
) -> None:
    signed = sign_json(copy.deepcopy(obj), SERVER_NAME, signing_key)
    assert encode_canonical_json(signed) == encode_canonical_json(expected)
    # The signature covers exactly our canonical encoding of the unsigned object.
    signature = decode_base64(expected["signatures"]["domain"][KEY_ID])
    get_verify_key(signing_key).verify(encode_canonical_json(obj), signature)


# --- event signing ---------------------------------------------------------------------

MINIMAL_EVENT: dict[str, Any] = {
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {"age_ts": 1000000},
}
MINIMAL_EVENT_SIGNED = """{
    "auth_events": [],
    "content": {},
    "depth": 3,
    "hashes": {
        "sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    },
    "origin": "domain",
    "origin_server_ts": 1000000,
    "prev_events": [],
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
        }
    },
    "type": "X",
    "unsigned": {
        "age_ts": 1000000
    }
}"""

REDACTABLE_EVENT: dict[str, Any] = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {"age_ts": 1000000},
}
REDACTABLE_EVENT_SIGNED = """{
    "content": {
        "body": "Here is the message content"
    },
    "event_id": "$0:domain",
    "hashes": {
        "sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"
    },
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
        }
    },
    "unsigned": {
        "age_ts": 1000000
    }
}"""

EVENT_VECTORS = pytest.mark.parametrize(
    ("event", "signed_text", "room_version"),
    [
        (MINIMAL_EVENT, MINIMAL_EVENT_SIGNED, V3),
        (REDACTABLE_EVENT, REDACTABLE_EVENT_SIGNED, V1),
    ],
    ids=["minimal-event", "redactable-event"],
)


@EVENT_VECTORS
def test_event_signing_vector_reproduces_signed_event_byte_for_byte(
    signing_key: Any, event: dict[str, Any], signed_text: str, room_version: RoomVersion
) -> None:
    pdu = copy.deepcopy(event)
    sign_event(pdu, SERVER_NAME, signing_key, room_version)
    assert encode_canonical_json(pdu) == encode_canonical_json(json.loads(signed_text))


@EVENT_VECTORS
def test_event_signing_vector_content_hash(
    event: dict[str, Any], signed_text: str, room_version: RoomVersion
) -> None:
    expected = json.loads(signed_text)["hashes"]["sha256"]
    assert compute_content_hash(event) == decode_base64(expected)
    assert check_content_hash(json.loads(signed_text))


@EVENT_VECTORS
def test_event_signing_vector_signature_verifies(
    keys: dict[str, dict[str, VerifyKeyWithExpiry]],
    event: dict[str, Any],
    signed_text: str,
    room_version: RoomVersion,
) -> None:
    verify_event_signatures(json.loads(signed_text), room_version, keys)


def test_redacted_copy_of_signed_vector_still_verifies_but_fails_hash_check(
    keys: dict[str, dict[str, VerifyKeyWithExpiry]],
) -> None:
    # "this step should succeed whether we have been sent the full event or a redacted copy"
    signed = json.loads(REDACTABLE_EVENT_SIGNED)
    del signed["content"]["body"]
    verify_event_signatures(signed, V1, keys)
    assert not check_content_hash(signed)


def test_tampered_signed_vector_fails_signature_check(
    keys: dict[str, dict[str, VerifyKeyWithExpiry]],
) -> None:
    signed = json.loads(MINIMAL_EVENT_SIGNED)
    signed["depth"] = 4
    with pytest.raises(InvalidEventError, match="does not verify"):
        verify_event_signatures(signed, V3, keys)
