"""What a local user's device change is announced as (pure logic): one
``m.device_list_update`` per device that is new, changed or gone, numbered in the
user's sequence with the previous one as ``prev_id``; ``m.signing_key_update`` when
the public cross-signing keys change.

spec: server-server-api.md#device-management
"""

from __future__ import annotations

from federation.e2ee.announcer import _announcement
from homeserver.storage.device_list_outbound import Announced

ALICE = "@alice:here.test"


def test_first_announcement_starts_the_sequence_without_prev_id() -> None:
    devices = {"D1": {"keys": 1}, "D2": {"keys": 2}}
    after, edus = _announcement(ALICE, Announced(0, {}, {}), devices, {})
    assert after.stream_id == 2
    assert [(t, c["device_id"], c["stream_id"], c["prev_id"]) for t, c in edus] == [
        ("m.device_list_update", "D1", 1, []),
        ("m.device_list_update", "D2", 2, [1]),
    ]
    assert edus[0][1]["keys"] == {"keys": 1} and edus[0][1]["deleted"] is False


def test_only_changed_and_deleted_devices_are_announced() -> None:
    devices = {"D1": {"keys": 1}, "D2": {"keys": 2}}
    before, _ = _announcement(ALICE, Announced(0, {}, {}), devices, {})
    after, edus = _announcement(ALICE, before, {"D1": {"keys": 1}, "D3": {"keys": 3}}, {})
    assert [(c["device_id"], c["stream_id"], c["prev_id"], c["deleted"]) for _, c in edus] == [
        ("D3", 3, [2], False),
        ("D2", 4, [3], True),
    ]
    assert "keys" not in edus[1][1]
    again, nothing = _announcement(ALICE, after, {"D1": {"keys": 1}, "D3": {"keys": 3}}, {})
    assert (again, nothing) == (after, [])


def test_new_cross_signing_keys_are_announced_once() -> None:
    master = {"usage": ["master"], "keys": {"ed25519:M": "M"}}
    after, edus = _announcement(ALICE, Announced(0, {}, {}), {}, {"master": master})
    assert edus == [("m.signing_key_update", {"user_id": ALICE, "master_key": master})]
    assert after.stream_id == 0
    _, again = _announcement(ALICE, after, {}, {"master": master})
    assert again == []
