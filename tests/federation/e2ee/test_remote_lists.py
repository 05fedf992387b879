"""Checks of what other servers send about their users' devices (pure logic):
updates and ``/user/devices`` answers of the wrong user, server or shape are
refused; bad devices are left out.

spec: server-server-api.md#device-management
"""

from __future__ import annotations

from typing import Any

import pytest

from federation.e2ee.remote_lists import BadDeviceList, _parse_update, _parse_user_devices

BOB = "@bob:there.test"


def keys(device_id: str, user_id: str = BOB) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "device_id": device_id,
        "algorithms": ["m.megolm.v1.aes-sha2"],
        "keys": {f"ed25519:{device_id}": "k"},
        "signatures": {},
        "unsigned": {"device_display_name": "dropped"},
    }


def test_an_update_is_parsed_with_its_keys_without_unsigned() -> None:
    content = {"user_id": BOB, "device_id": "D", "stream_id": 3, "prev_id": [2], "keys": keys("D")}
    update = _parse_update("there.test", content)
    assert update is not None
    assert (update.stream_id, update.prev_ids, update.deleted) == (3, (2,), False)
    assert update.key_json is not None and "unsigned" not in update.key_json


@pytest.mark.parametrize(
    "content",
    [
        {"user_id": "@bob:elsewhere.test", "device_id": "D", "stream_id": 1},
        {"user_id": BOB, "device_id": "", "stream_id": 1},
        {"user_id": BOB, "device_id": "D", "stream_id": -1},
        {"user_id": BOB, "device_id": "D", "stream_id": True},
        {"user_id": BOB, "device_id": "D", "stream_id": 1, "prev_id": ["1"]},
        {"user_id": BOB, "device_id": "D", "stream_id": 1, "keys": keys("OTHER")},
        {"user_id": BOB, "device_id": "D", "stream_id": 1, "keys": keys("D", "@eve:there.test")},
    ],
)
def test_malformed_or_misfiled_updates_are_refused(content: dict[str, Any]) -> None:
    assert _parse_update("there.test", content) is None


def test_user_devices_answer_keeps_only_valid_devices() -> None:
    answer = {
        "user_id": BOB,
        "stream_id": 7,
        "devices": [
            {"device_id": "D1", "keys": keys("D1"), "device_display_name": "phone"},
            {"device_id": "D2", "keys": keys("D3")},
            "junk",
        ],
        "master_key": {"user_id": BOB, "usage": ["master"], "keys": {"ed25519:M": "M"}},
        "self_signing_key": {"user_id": "@eve:there.test", "usage": ["self_signing"]},
    }
    stream_id, devices, signing = _parse_user_devices(BOB, answer)
    assert stream_id == 7
    assert [(d.device_id, d.display_name) for d in devices] == [("D1", "phone")]
    assert list(signing) == ["master"]


@pytest.mark.parametrize(
    "answer",
    [None, {"user_id": "@eve:there.test", "stream_id": 1, "devices": []}, {"user_id": BOB}],
)
def test_an_answer_about_someone_else_or_without_a_list_is_refused(answer: Any) -> None:
    with pytest.raises(BadDeviceList):
        _parse_user_devices(BOB, answer)


def test_device_keys_over_16_kib_are_refused() -> None:
    from federation.e2ee import checks

    keys = {
        "user_id": "@bob:remote.test",
        "device_id": "D1",
        "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
        "keys": {"ed25519:D1": "k"},
        "signatures": {},
    }
    assert checks.device_keys(keys, "@bob:remote.test", "D1") is not None
    padded = dict(keys, padding="x" * checks.MAX_KEY_JSON_BYTES)
    assert checks.device_keys(padded, "@bob:remote.test", "D1") is None
