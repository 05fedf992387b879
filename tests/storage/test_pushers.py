"""PusherStore on both engines: one pusher per (user, app_id, pushkey) even when set
twice at once, rebound to the device setting it, at most so many per user, ``append``
removals, pushers of deleted devices, and an idempotent, ordered, trimmable queue.

spec: client-server-api/modules/push.md#client-behaviour
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from homeserver.storage.database import Database
from homeserver.storage.devices import DeviceStore
from homeserver.storage.pushers import (
    DeliveryState,
    NewPusher,
    PusherStore,
    QueuedNotification,
    TooManyPushers,
)


def new(user_id: str, pushkey: str, device_id: str | None = None, **data: object) -> NewPusher:
    return NewPusher(
        user_id=user_id,
        kind="http",
        app_id="app",
        pushkey=pushkey,
        app_display_name="App",
        device_display_name="Phone",
        profile_tag=None,
        lang="en",
        data={"url": "https://gw/_matrix/push/v1/notify", **data},
        device_id=device_id,
    )


@pytest_twisted.ensureDeferred
async def test_setting_again_updates_and_append_false_takes_the_pushkey(db: Database) -> None:
    store = PusherStore(db)
    first, removed = await store.set_pusher(
        new("@a:hs", "k"), now=1000, remove_other_users=True, max_per_user=50
    )
    assert removed == []
    again, _ = await store.set_pusher(
        new("@a:hs", "k", n=2), now=2000, remove_other_users=True, max_per_user=50
    )
    assert again.pusher_id == first.pusher_id
    [stored] = await store.get_pushers_for_user("@a:hs")
    assert stored.data["n"] == 2 and stored.created_ts == 2000

    await store.set_pusher(new("@b:hs", "k"), now=3000, remove_other_users=False, max_per_user=50)
    assert await store.user_ids_with_pushers() == {"@a:hs", "@b:hs"}
    _, removed = await store.set_pusher(
        new("@c:hs", "k"), now=4000, remove_other_users=True, max_per_user=50
    )
    assert sorted(p.user_id for p in removed) == ["@a:hs", "@b:hs"]
    assert await store.user_ids_with_pushers() == {"@c:hs"}


@pytest_twisted.ensureDeferred
async def test_pushers_of_deleted_devices_go(db: Database) -> None:
    store = PusherStore(db)
    devices = DeviceStore(db)
    await devices.add_device_with_token("@a:hs", "KEEP", "hash-1", created_ts=1)
    await store.set_pusher(
        new("@a:hs", "kept", "KEEP"), now=1, remove_other_users=True, max_per_user=50
    )
    await store.set_pusher(
        new("@a:hs", "gone", "GONE"), now=1, remove_other_users=True, max_per_user=50
    )
    await store.set_pusher(
        new("@a:hs", "no-device"), now=1, remove_other_users=True, max_per_user=50
    )
    removed = await store.delete_pushers_of_deleted_devices("@a:hs")
    assert [p.pushkey for p in removed] == ["gone"]
    remaining = await store.get_pushers_for_user("@a:hs")
    assert sorted(p.pushkey for p in remaining) == ["kept", "no-device"]


@pytest_twisted.ensureDeferred
async def test_the_queue_is_ordered_idempotent_and_dies_with_its_pusher(db: Database) -> None:
    store = PusherStore(db)
    pusher, _ = await store.set_pusher(
        new("@a:hs", "k"), now=1, remove_other_users=True, max_per_user=50
    )
    rows = [
        QueuedNotification(pusher.pusher_id, position, f"$e{position}", "!r:hs", ["notify"])
        for position in (7, 3, 5)
    ]
    await store.enqueue(rows, now=10)
    await store.enqueue(rows, now=11)  # a replayed batch
    await store.enqueue([QueuedNotification(999, 1, "$x", "!r:hs", [])], now=12)  # no pusher
    pending = await store.pending(pusher.pusher_id, 10)
    assert [p.position for p in pending] == [3, 5, 7]
    assert pending[0].actions == ["notify"] and pending[0].queued_ts == 10
    assert await store.pushers_with_pending() == {pusher.pusher_id: None}

    await store.done_up_to(pusher.pusher_id, 5, DeliveryState(2, 100, 200))
    assert [p.position for p in await store.pending(pusher.pusher_id, 10)] == [7]
    assert await store.get_delivery_state(pusher.pusher_id) == DeliveryState(2, 100, 200)
    assert await store.pushers_with_pending() == {pusher.pusher_id: 200}

    await store.delete_pusher("@a:hs", "app", "k")
    assert await store.pending(pusher.pusher_id, 10) == []
    assert await store.pushers_with_pending() == {}


@pytest_twisted.ensureDeferred
async def test_the_first_vapid_key_stored_stays(db: Database) -> None:
    store = PusherStore(db)
    assert await store.get_or_store_vapid_key("first", now=1) == "first"
    assert await store.get_or_store_vapid_key("second", now=2) == "first"


@pytest_twisted.ensureDeferred
async def test_setting_a_pusher_twice_at_once_makes_one_bound_to_the_last_device(
    db: Database,
) -> None:
    store = PusherStore(db)
    results = await defer.gatherResults(
        [
            defer.ensureDeferred(
                store.set_pusher(
                    new("@a:hs", "k", f"DEV{i}"), now=i, remove_other_users=True, max_per_user=50
                )
            )
            for i in range(4)
        ]
    )
    assert len({pusher.pusher_id for pusher, _ in results}) == 1
    [stored] = await store.get_pushers_for_user("@a:hs")
    # Whichever came last owns it, with its time as pushkey_ts.
    assert (stored.device_id, stored.created_ts) in {(f"DEV{i}", i) for i in range(4)}
    again, _ = await store.set_pusher(
        new("@a:hs", "k", "NEW"), now=99, remove_other_users=True, max_per_user=50
    )
    assert (again.device_id, again.created_ts) == ("NEW", 99)
    [stored] = await store.get_pushers_for_user("@a:hs")
    assert (stored.device_id, stored.created_ts) == ("NEW", 99)


@pytest_twisted.ensureDeferred
async def test_a_user_has_at_most_max_per_user_pushers_but_may_update_them(db: Database) -> None:
    store = PusherStore(db)
    for pushkey in ("one", "two"):
        await store.set_pusher(
            new("@a:hs", pushkey), now=1, remove_other_users=True, max_per_user=2
        )
    with pytest.raises(TooManyPushers):
        await store.set_pusher(
            new("@a:hs", "three"), now=2, remove_other_users=True, max_per_user=2
        )
    await store.set_pusher(new("@a:hs", "two", n=2), now=3, remove_other_users=True, max_per_user=2)
    await store.set_pusher(new("@b:hs", "three"), now=4, remove_other_users=True, max_per_user=2)
    assert sorted(p.pushkey for p in await store.get_pushers_for_user("@a:hs")) == ["one", "two"]


@pytest_twisted.ensureDeferred
async def test_trimming_drops_old_rows_and_keeps_the_newest(db: Database) -> None:
    store = PusherStore(db)
    pusher, _ = await store.set_pusher(
        new("@a:hs", "k"), now=1, remove_other_users=True, max_per_user=50
    )
    pid = pusher.pusher_id
    await store.enqueue([QueuedNotification(pid, p, f"$o{p}", "!r:hs", []) for p in (1, 9)], now=10)
    await store.enqueue(
        [QueuedNotification(pid, p, f"$n{p}", "!r:hs", []) for p in (2, 3, 4, 5)], now=20
    )
    assert await store.trim_queue(pid, queued_before=20, keep=10) == 2
    assert [p.position for p in await store.pending(pid, None)] == [2, 3, 4, 5]
    assert await store.trim_queue(pid, queued_before=20, keep=3) == 1
    assert [p.position for p in await store.pending(pid, None)] == [3, 4, 5]
    assert await store.trim_queue(pid, queued_before=0, keep=3) == 0
