"""E2eKeysStore on both engines: uploads, counts, claims (one-time keys in upload
order, then the fallback key), concurrent claims never sharing a key, and keys
deleted with their device.

spec: client-server-api/modules/end_to_end_encryption.md, #post_matrixclientv3keysclaim
"""

from __future__ import annotations

import json

import pytest_twisted
from twisted.internet import defer

from homeserver.storage.database import Database
from homeserver.storage.devices import DeviceStore
from homeserver.storage.e2e_keys import ClaimedKey, E2eKeysStore, KeyRow

ALICE = "@alice:hs"
ALG = "signed_curve25519"


def otk(key_id: str, key: str | None = None) -> KeyRow:
    return (ALG, key_id, json.dumps({"key": key or f"k-{key_id}"}))


async def upload(
    store: E2eKeysStore,
    device: str,
    *,
    one_time: list[KeyRow] | None = None,
    fallback: list[KeyRow] | None = None,
    device_keys: str | None = None,
) -> dict[str, int]:
    result = await store.upload(
        ALICE,
        device,
        device_keys=device_keys,
        one_time_keys=one_time or [],
        fallback_keys=fallback or [],
        now_ms=1,
    )
    assert result.conflicts == []
    return result.counts


@pytest_twisted.ensureDeferred
async def test_upload_counts_and_idempotent_reupload(db: Database) -> None:
    store = E2eKeysStore(db)
    assert await upload(store, "D", one_time=[otk("A"), otk("B")]) == {ALG: 2}
    # The same keys again (a retried request) change nothing.
    assert await upload(store, "D", one_time=[otk("A"), otk("B")]) == {ALG: 2}
    assert await upload(store, "D", one_time=[("other_alg", "X", '"plain"')]) == {
        ALG: 2,
        "other_alg": 1,
    }
    assert await store.count_one_time_keys(ALICE, "D") == {ALG: 2, "other_alg": 1}
    assert await store.count_one_time_keys(ALICE, "OTHER") == {}


@pytest_twisted.ensureDeferred
async def test_conflicting_one_time_key_writes_nothing(db: Database) -> None:
    store = E2eKeysStore(db)
    await upload(store, "D", one_time=[otk("A")])
    result = await store.upload(
        ALICE,
        "D",
        device_keys='{"new":1}',
        one_time_keys=[otk("A", "different"), otk("B")],
        fallback_keys=[],
        now_ms=2,
    )
    assert result.conflicts == [f"{ALG}:A"]
    assert result.counts == {ALG: 1}
    assert await store.get_device_keys(ALICE, "D") is None


@pytest_twisted.ensureDeferred
async def test_device_keys_stored_and_queried(db: Database) -> None:
    store = E2eKeysStore(db)
    devices = DeviceStore(db)
    await devices.add_device_with_token(ALICE, "D1", "h1", created_ts=1, display_name="Phone")
    await devices.add_device_with_token(ALICE, "D2", "h2", created_ts=1)
    await upload(store, "D1", device_keys='{"d":1}')
    await upload(store, "D2", device_keys='{"d":2}')
    assert await store.get_device_keys(ALICE, "D1") == '{"d":1}'
    everything = await store.get_device_keys_for([(ALICE, [])])
    assert sorted((k.device_id, k.key_json, k.display_name) for k in everything) == [
        ("D1", '{"d":1}', "Phone"),
        ("D2", '{"d":2}', None),
    ]
    some = await store.get_device_keys_for([(ALICE, ["D2", "NOPE"]), ("@bob:hs", [])])
    assert [k.device_id for k in some] == ["D2"]


@pytest_twisted.ensureDeferred
async def test_claims_in_upload_order_then_fallback(db: Database) -> None:
    store = E2eKeysStore(db)
    await upload(store, "D", one_time=[otk("Z1")])
    await upload(store, "D", one_time=[otk("A2")], fallback=[(ALG, "F1", '{"key":"f1"}')])
    assert await store.sync_key_state(ALICE, "D") == ({ALG: 2}, [ALG])
    claimed = await store.claim([(ALICE, "D", ALG)] * 2)
    # Z1 was uploaded first, so it goes first even though A2 sorts before it.
    assert [k.key_id for k in claimed] == ["Z1", "A2"]
    assert await store.sync_key_state(ALICE, "D") == ({}, [ALG])
    fallback = await store.claim([(ALICE, "D", ALG)])
    assert fallback == [ClaimedKey(ALICE, "D", ALG, "F1", '{"key":"f1"}')]
    # Used, but still handed out until it is replaced.
    assert await store.sync_key_state(ALICE, "D") == ({}, [])
    assert [k.key_id for k in await store.claim([(ALICE, "D", ALG)])] == ["F1"]
    # Re-sending the same fallback key does not make it fresh; a new one does.
    await upload(store, "D", fallback=[(ALG, "F1", '{"key":"f1"}')])
    assert await store.sync_key_state(ALICE, "D") == ({}, [])
    await upload(store, "D", fallback=[(ALG, "F2", '{"key":"f2"}')])
    assert await store.sync_key_state(ALICE, "D") == ({}, [ALG])
    assert [k.key_id for k in await store.claim([(ALICE, "D", ALG)])] == ["F2"]
    assert await store.claim([(ALICE, "D", "unknown_alg"), ("@bob:hs", "X", ALG)]) == []


async def _claim_concurrently(db: Database, claims: int) -> list[ClaimedKey]:
    # Separate store objects as separate requests would use; the database's
    # connection pool runs the transactions in parallel (PostgreSQL) or one after the
    # other on its single write connection (SQLite).
    results = await defer.gatherResults(
        [defer.ensureDeferred(E2eKeysStore(db).claim([(ALICE, "D", ALG)])) for _ in range(claims)],
        consumeErrors=True,
    )
    return [key for result in results for key in result]


@pytest_twisted.ensureDeferred
async def test_concurrent_claims_never_share_a_key(db: Database) -> None:
    store = E2eKeysStore(db)
    await upload(
        store,
        "D",
        one_time=[otk(f"K{i:02d}") for i in range(10)],
        fallback=[(ALG, "FB", '{"key":"fb"}')],
    )
    claimed = await _claim_concurrently(db, 20)
    assert len(claimed) == 20
    one_time = [k.key_id for k in claimed if k.key_id != "FB"]
    assert sorted(one_time) == [f"K{i:02d}" for i in range(10)]
    assert len(set(one_time)) == 10
    assert sum(1 for k in claimed if k.key_id == "FB") == 10
    assert await store.sync_key_state(ALICE, "D") == ({}, [])


@pytest_twisted.ensureDeferred
async def test_deleting_devices_deletes_their_keys(db: Database) -> None:
    store = E2eKeysStore(db)
    devices = DeviceStore(db)
    for device in ("A", "B", "C"):
        await devices.add_device_with_token(ALICE, device, f"h{device}", created_ts=1)
        await upload(
            store,
            device,
            device_keys=f'{{"d":"{device}"}}',
            one_time=[otk("K")],
            fallback=[(ALG, "F", "{}")],
        )
    await devices.delete_devices(ALICE, ["A"])
    assert await store.get_device_keys(ALICE, "A") is None
    assert await store.sync_key_state(ALICE, "A") == ({}, [])
    assert await store.get_device_keys(ALICE, "B") is not None
    await devices.delete_all_devices(ALICE, except_device_id="C")
    assert await store.sync_key_state(ALICE, "B") == ({}, [])
    assert await store.sync_key_state(ALICE, "C") == ({ALG: 1}, [ALG])
    await devices.delete_all_devices(ALICE)
    assert await store.get_device_keys_for([(ALICE, [])]) == []
    assert await store.sync_key_state(ALICE, "C") == ({}, [])
