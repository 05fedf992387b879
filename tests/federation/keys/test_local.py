"""Our own key response: its shape, our signature on it, old keys, and when it is
signed again.

spec: server-server-api.md#publishing-keys
"""

from __future__ import annotations

import attrs
import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import verify_signed_json
from twisted.internet import task

from federation.keys.local import LocalServerKeys
from homeserver.clock import Clock

SERVER = "example.org"
HOUR_MS = 3_600_000


@attrs.frozen
class OldKey:
    key_id: str
    public_key: str
    expired_ts: int


def local_keys(
    reactor: task.Clock, old: tuple[OldKey, ...] = (), interval_ms: int = 24 * HOUR_MS
) -> LocalServerKeys:
    return LocalServerKeys(
        server_name=SERVER,
        signing_key=generate_signing_key("a_abcd"),
        old_signing_keys=old,
        key_refresh_interval_ms=interval_ms,
        clock=Clock(reactor),
    )


def test_the_response_lists_our_key_and_is_signed_with_it() -> None:
    reactor = task.Clock()
    reactor.advance(1_000)
    keys = local_keys(reactor)
    response = keys.server_keys_response()
    verify_key = get_verify_key(keys.signing_key)
    assert response["server_name"] == SERVER
    assert response["verify_keys"] == {
        "ed25519:a_abcd": {"key": encode_verify_key_base64(verify_key)}
    }
    assert response["old_verify_keys"] == {}
    assert response["valid_until_ts"] == 1_000_000 + 24 * HOUR_MS
    assert list(response["signatures"]) == [SERVER]
    verify_signed_json(response, SERVER, verify_key)


def test_old_keys_are_published_with_their_expiry() -> None:
    old_key = get_verify_key(generate_signing_key("old1"))
    old = OldKey("ed25519:old1", encode_verify_key_base64(old_key), 12_345)
    keys = local_keys(task.Clock(), (old,))
    response = keys.server_keys_response()
    assert response["old_verify_keys"] == {
        "ed25519:old1": {"key": encode_verify_key_base64(old_key), "expired_ts": 12_345}
    }
    verify_signed_json(response, SERVER, get_verify_key(keys.signing_key))
    assert keys.verify_keys()["ed25519:old1"][1] == 12_345


def test_an_invalid_old_key_is_refused() -> None:
    with pytest.raises(ValueError, match="base64|bytes"):
        local_keys(task.Clock(), (OldKey("ed25519:old1", "not a key!", 1),))


def test_the_response_is_signed_again_once_half_its_validity_has_passed() -> None:
    reactor = task.Clock()
    keys = local_keys(reactor, interval_ms=4 * HOUR_MS)
    first = keys.server_keys_response()
    reactor.advance(2 * 3600 - 1)
    assert keys.server_keys_response() == first
    reactor.advance(1)
    renewed = keys.server_keys_response()
    assert renewed["valid_until_ts"] == 6 * HOUR_MS
    verify_signed_json(renewed, SERVER, get_verify_key(keys.signing_key))


def test_callers_cannot_change_the_cached_response() -> None:
    keys = local_keys(task.Clock())
    keys.server_keys_response()["signatures"]["notary.example"] = {"ed25519:x": "sig"}
    assert list(keys.server_keys_response()["signatures"]) == [SERVER]
