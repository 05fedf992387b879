"""Reading key responses: which keys count, and what makes a response unusable.

spec: server-server-api.md#publishing-keys, data/api/server-server/definitions/keys.yaml
"""

from __future__ import annotations

from typing import Any

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key

from federation.keys.errors import KeyFetchError
from federation.keys.responses import (
    MAX_KEY_VALIDITY_MS,
    MAX_KEYS_PER_RESPONSE,
    check_self_signed,
    parse_key_response,
)
from tests.federation.keys.key_peers import NOW_MS, RemoteServer

SERVER = "remote.example"


def public(version: str) -> str:
    return encode_verify_key_base64(get_verify_key(generate_signing_key(version)))


def test_keys_of_other_algorithms_are_skipped() -> None:
    remote = RemoteServer(SERVER)
    response = remote.key_response()
    response["verify_keys"]["curve25519:x"] = {"key": "whatever"}
    response["verify_keys"]["ed25519:bad version!"] = {"key": "whatever"}
    parsed = parse_key_response(response, expected_server=SERVER)
    assert list(parsed.keys) == [remote.key_id]


def test_a_key_listed_as_current_and_old_counts_as_current() -> None:
    remote = RemoteServer(SERVER)
    response = remote.key_response(valid_until_ts=NOW_MS)
    response["old_verify_keys"][remote.key_id] = {
        "key": response["verify_keys"][remote.key_id]["key"],
        "expired_ts": 5,
    }
    key = parse_key_response(response, expected_server=SERVER).keys[remote.key_id]
    assert (key.old, key.valid_until_ts) == (False, NOW_MS)


def test_a_current_key_is_usable_for_at_most_seven_days_after_receipt() -> None:
    remote = RemoteServer(SERVER)
    far = parse_key_response(
        remote.key_response(valid_until_ts=NOW_MS * 2), expected_server=SERVER
    ).keys[remote.key_id]
    assert far.usable_until(NOW_MS) == NOW_MS + MAX_KEY_VALIDITY_MS
    near = parse_key_response(
        remote.key_response(valid_until_ts=NOW_MS + 5), expected_server=SERVER
    ).keys[remote.key_id]
    assert near.usable_until(NOW_MS) == NOW_MS + 5


def test_an_old_key_is_usable_until_it_expired() -> None:
    remote = RemoteServer(SERVER)
    old_id = remote.key_id
    remote.rotate(expired_ts=123)
    old = parse_key_response(remote.key_response(), expected_server=SERVER).keys[old_id]
    assert old.old
    assert old.usable_until(NOW_MS) == 123


@pytest.mark.parametrize(
    "change",
    [
        {"server_name": "bad name!"},
        {"valid_until_ts": -1},
        {"valid_until_ts": True},
        {"valid_until_ts": 1.5},
        {"verify_keys": None},
        {"old_verify_keys": []},
        {"signatures": "none"},
        {"verify_keys": {"ed25519:a": "key"}},
        {"verify_keys": {"ed25519:a": {"key": 5}}},
        {"verify_keys": {"ed25519:a": {"key": "AAAA"}}},
        {"old_verify_keys": {"ed25519:a": {"key": public("a")}}},
        {"old_verify_keys": {"ed25519:a": {"key": public("a"), "expired_ts": "x"}}},
        {
            "old_verify_keys": {
                f"ed25519:k{n}": {"key": public("k"), "expired_ts": 1}
                for n in range(MAX_KEYS_PER_RESPONSE)
            }
        },
    ],
)
def test_malformed_responses_are_refused(change: dict[str, Any]) -> None:
    response = {**RemoteServer(SERVER).key_response(), **change}
    with pytest.raises(KeyFetchError):
        parse_key_response(response, expected_server=SERVER)


def test_a_response_signed_only_with_an_old_key_is_refused() -> None:
    remote = RemoteServer(SERVER)
    old_key = remote.signing_key
    remote.rotate(expired_ts=1)
    response = remote.key_response()
    del response["signatures"]
    signed = remote.sign(response, old_key)
    with pytest.raises(KeyFetchError, match="with a key it lists"):
        check_self_signed(parse_key_response(signed, expected_server=SERVER))


def test_every_signature_with_a_listed_key_must_verify() -> None:
    remote = RemoteServer(SERVER)
    second = generate_signing_key("second")
    response = remote.key_response()
    response["verify_keys"]["ed25519:second"] = {
        "key": encode_verify_key_base64(get_verify_key(second))
    }
    del response["signatures"]
    signed = remote.sign(response)
    signed["signatures"][SERVER]["ed25519:second"] = signed["signatures"][SERVER][remote.key_id]
    with pytest.raises(KeyFetchError, match="bad signature"):
        check_self_signed(parse_key_response(signed, expected_server=SERVER))
