"""RemoteDeviceListStore and DeviceListOutboundStore on both engines: snapshots,
updates applied on top (or refused as duplicates, untracked or after a gap), cached
cross-signing keys, forgetting; what was announced of a local user."""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.device_list_outbound import Announced, DeviceListOutboundStore
from homeserver.storage.remote_device_lists import (
    DeviceUpdate,
    RemoteDevice,
    RemoteDeviceListStore,
    UpdateOutcome,
)

BOB = "@bob:remote.test"


def update(stream_id: int, prev: tuple[int, ...], device: str = "D2", **kw: object) -> DeviceUpdate:
    fields: dict[str, object] = {
        "user_id": BOB,
        "device_id": device,
        "stream_id": stream_id,
        "prev_ids": prev,
        "deleted": False,
        "key_json": '{"k":1}',
        "display_name": None,
    }
    fields.update(kw)
    return DeviceUpdate(**fields)  # type: ignore[arg-type]


@pytest_twisted.ensureDeferred
async def test_updates_apply_on_a_snapshot_until_one_is_missed(db: Database) -> None:
    store = RemoteDeviceListStore(db)
    assert await store.apply_update(update(1, ()), now_ms=1) == UpdateOutcome.UNTRACKED
    await store.replace_list(
        BOB, 5, [RemoteDevice("D1", '{"a":1}', "phone")], {"master": '{"m":1}'}, now_ms=1
    )
    assert await store.apply_update(update(6, (5,)), now_ms=2) == UpdateOutcome.APPLIED
    assert await store.apply_update(update(6, (5,)), now_ms=2) == UpdateOutcome.DUPLICATE
    assert await store.apply_update(update(4, ()), now_ms=2) == UpdateOutcome.DUPLICATE
    assert (
        await store.apply_update(
            update(7, (6,), device="D1", deleted=True, key_json=None), now_ms=3
        )
        == UpdateOutcome.APPLIED
    )
    cached = (await store.get_lists([BOB, "@nobody:remote.test"]))[BOB]
    assert (cached.stream_id, cached.stale) == (5, False)
    assert cached.devices == [RemoteDevice("D2", '{"k":1}', None)]
    assert cached.signing_keys == {"master": '{"m":1}'}

    # A prev_id never seen: stale, and later updates are not applied either.
    assert await store.apply_update(update(9, (8,)), now_ms=4) == UpdateOutcome.STALE
    assert await store.apply_update(update(10, (7,)), now_ms=4) == UpdateOutcome.STALE
    assert (await store.get_lists([BOB]))[BOB].stale is True

    # A new snapshot replaces everything.
    await store.replace_list(BOB, 10, [], {}, now_ms=5)
    cached = (await store.get_lists([BOB]))[BOB]
    assert (cached.stream_id, cached.stale, cached.devices, cached.signing_keys) == (
        10,
        False,
        [],
        {},
    )


@pytest_twisted.ensureDeferred
async def test_signing_keys_are_kept_only_for_tracked_users_and_forgotten(db: Database) -> None:
    store = RemoteDeviceListStore(db)
    assert await store.set_signing_keys(BOB, {"master": "{}"}) is False
    await store.replace_list(BOB, 1, [RemoteDevice("D1", "{}", None)], {}, now_ms=1)
    assert await store.set_signing_keys(BOB, {"master": '{"m":2}'}) is True
    assert await store.set_signing_keys(BOB, {"master": '{"m":3}', "self_signing": "{}"})
    assert (await store.get_lists([BOB]))[BOB].signing_keys == {
        "master": '{"m":3}',
        "self_signing": "{}",
    }
    await store.mark_stale(BOB)
    assert (await store.get_lists([BOB]))[BOB].stale is True
    await store.replace_list(BOB, 1, [], {}, now_ms=1)
    await store.mark_stale_users([BOB, "@untracked:remote.test"])
    assert (await store.get_lists([BOB]))[BOB].stale is True
    await store.mark_room_members_stale("!unknown:remote.test")
    await store.forget([BOB])
    assert await store.get_lists([BOB]) == {}
    assert await store.apply_update(update(2, (1,)), now_ms=2) == UpdateOutcome.UNTRACKED


@pytest_twisted.ensureDeferred
async def test_announcements_number_a_users_sequence(db: Database) -> None:
    store = DeviceListOutboundStore(db)
    alice = "@alice:here.test"
    assert await store.current_stream_id(alice) == 0

    def first(before: Announced) -> tuple[Announced, str]:
        assert before == Announced(0, {}, {})
        return Announced(2, {"D1": "h1", "D2": "h2"}, {"master": "m"}), "first"

    assert await store.announce(alice, first) == "first"
    assert await store.current_stream_id(alice) == 2

    def unchanged(before: Announced) -> tuple[Announced, None]:
        assert before == Announced(2, {"D1": "h1", "D2": "h2"}, {"master": "m"})
        return before, None

    await store.announce(alice, unchanged)
    assert await store.current_stream_id(alice) == 2
    await store.announce(alice, lambda before: (Announced(3, {"D1": "h1"}, {}), None))
    assert await store.current_stream_id(alice) == 3
    assert await store.servers_sharing_a_room(alice) == set()


@pytest_twisted.ensureDeferred
async def test_an_update_going_stale_during_a_fetch_keeps_the_list_stale(db: Database) -> None:
    store = RemoteDeviceListStore(db)
    await store.replace_list(BOB, 5, [], {}, now_ms=1)
    # A fetch starts (reads the generation), then an update it may not include
    # arrives and goes stale before the answer is stored.
    generation = await store.get_generation(BOB)
    assert await store.apply_update(update(8, (7,)), now_ms=2) == UpdateOutcome.STALE
    assert await store.replace_list(BOB, 6, [], {}, now_ms=3, generation=generation) is False
    assert (await store.get_lists([BOB]))[BOB].stale is True
    # The next fetch, with nothing arriving meanwhile, is current.
    generation = await store.get_generation(BOB)
    assert await store.replace_list(BOB, 8, [], {}, now_ms=4, generation=generation) is True
    assert (await store.get_lists([BOB]))[BOB].stale is False
    assert await store.get_generation("@nobody:remote.test") is None


@pytest_twisted.ensureDeferred
async def test_an_update_without_prev_id_on_a_later_snapshot_marks_it_stale(
    db: Database,
) -> None:
    store = RemoteDeviceListStore(db)
    await store.replace_list(BOB, 0, [], {}, now_ms=1)
    # A sequence starting after an empty snapshot at 0: nothing was missed.
    assert await store.apply_update(update(1, ()), now_ms=2) == UpdateOutcome.APPLIED
    await store.replace_list(BOB, 40, [], {}, now_ms=3)
    # Synapse sends prev_id [] when it never sent us the user's list: a gap unknown.
    assert await store.apply_update(update(41, ()), now_ms=4) == UpdateOutcome.STALE


@pytest_twisted.ensureDeferred
async def test_devices_per_user_are_capped_and_only_recent_update_ids_kept(
    db: Database,
) -> None:
    from homeserver.storage.remote_device_lists import KEPT_UPDATE_IDS, MAX_DEVICES_PER_USER

    store = RemoteDeviceListStore(db)
    devices = [RemoteDevice(f"D{i}", "{}", None) for i in range(MAX_DEVICES_PER_USER)]
    await store.replace_list(BOB, 1, devices, {}, now_ms=1)
    assert await store.apply_update(update(2, (1,), device="NEW"), now_ms=2) == (
        UpdateOutcome.REFUSED
    )
    # A device already held may change.
    assert await store.apply_update(update(2, (1,), device="D0"), now_ms=2) == (
        UpdateOutcome.APPLIED
    )
    for stream_id in range(3, 3 + KEPT_UPDATE_IDS + 10):
        outcome = await store.apply_update(update(stream_id, (stream_id - 1,), "D1"), now_ms=3)
        assert outcome == UpdateOutcome.APPLIED
    rows = await db.execute(
        "count", "SELECT COUNT(*) FROM remote_device_list_updates WHERE user_id = ?", BOB
    )
    assert int(rows[0][0]) == KEPT_UPDATE_IDS
    # An old update again is a duplicate; naming a forgotten prev_id is a gap.
    assert await store.apply_update(update(3, (2,), "D1"), now_ms=4) == UpdateOutcome.DUPLICATE
    assert await store.apply_update(update(500, (4,), "D1"), now_ms=4) == UpdateOutcome.STALE


@pytest_twisted.ensureDeferred
async def test_remote_users_sharing_a_room_with_a_local_account(db: Database) -> None:
    from homeserver.storage.transaction import Transaction

    def write(txn: Transaction) -> None:
        txn.execute("INSERT INTO users (user_id, created_ts) VALUES (?, ?)", ("@me:here.test", 0))
        txn.executemany(
            "INSERT INTO room_memberships (room_nid, user_id, membership, event_nid)"
            " VALUES (?, ?, ?, ?)",
            [
                (1, "@me:here.test", "join", 1),
                (1, BOB, "join", 2),
                # A room of remote users only, one of them on a server named like ours.
                (2, "@carol:remote.test", "join", 3),
                (2, "@fake:here.test", "join", 4),
                (3, "@me:here.test", "leave", 5),
                (3, "@dave:remote.test", "join", 6),
                (1, "@erin:remote.test", "leave", 7),
            ],
        )

    await db.run_interaction("test_memberships", write)
    store = RemoteDeviceListStore(db)
    found = await store.shared_with_local_users(
        [BOB, "@carol:remote.test", "@dave:remote.test", "@erin:remote.test"], "here.test"
    )
    assert found == {BOB}
