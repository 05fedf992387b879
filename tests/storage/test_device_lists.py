"""DeviceListStore on both engines: positions, change ranges, start-up position.

The membership reads are exercised through the real server
(tests/api/client/test_device_lists.py).
"""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.device_lists import DeviceListStore
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore


def new_store(db: Database) -> DeviceListStore:
    return DeviceListStore(db, EventStore(db, StateStore(db)))


async def changed(store: DeviceListStore, after: int, up_to: int) -> set[str]:
    """The changes in the range that everyone sharing a room may see."""
    users = await store.users_changed(after, up_to, "@viewer:hs", limit=100)
    assert users is not None
    assert users.for_viewer == set()
    return users.for_room_mates


@pytest_twisted.ensureDeferred
async def test_changes_get_rising_positions_and_are_noted_with_their_audience(
    db: Database,
) -> None:
    store = new_store(db)
    assert await store.current_position() == 0
    noted: list[tuple[int, frozenset[str]]] = []
    first = await store.add_change("@a:hs", lambda *change: noted.append(change))
    second = await store.add_change("@b:hs", lambda *change: noted.append(change))
    assert first < second
    # A user in no room is their own whole audience.
    assert noted == [(first, frozenset({"@a:hs"})), (second, frozenset({"@b:hs"}))]
    await store.wait_until_visible(second)
    assert await store.current_position() == second


@pytest_twisted.ensureDeferred
async def test_users_changed_in_a_range(db: Database) -> None:
    store = new_store(db)
    positions = [
        await store.add_change(user, lambda *_: None) for user in ("@a:hs", "@b:hs", "@a:hs")
    ]
    assert await changed(store, 0, positions[-1]) == {"@a:hs", "@b:hs"}
    assert await changed(store, positions[0], positions[1]) == {"@b:hs"}
    assert await changed(store, positions[1], positions[2]) == {"@a:hs"}
    assert await changed(store, positions[2], positions[2]) == set()
    assert await changed(store, positions[2], positions[0]) == set()
    # More rows than the reader will take: it is told so rather than given a part.
    assert await store.users_changed(0, positions[-1], "@viewer:hs", limit=1) is None
    assert await store.users_changed(0, positions[-1], "@viewer:hs", limit=2) is not None


@pytest_twisted.ensureDeferred
async def test_a_new_store_starts_after_the_highest_stored_change(db: Database) -> None:
    last = await new_store(db).add_change("@a:hs", lambda *_: None)
    fresh = new_store(db)
    assert await fresh.current_position() == last
    assert await fresh.add_change("@b:hs", lambda *_: None) > last
    assert await fresh.share_a_room("@a:hs", []) == set()
    assert await fresh.share_a_room("@a:hs", ["@b:hs"]) == set()
    assert await fresh.joined_members([]) == {}
    assert await fresh.membership_transitions([1], 0, 10, limit=10) == []


@pytest_twisted.ensureDeferred
async def test_a_change_for_one_user_is_shown_to_that_user_alone(db: Database) -> None:
    store = new_store(db)
    noted: list[tuple[int, frozenset[str]]] = []
    position = await store.add_change(
        "@bob:hs", lambda *change: noted.append(change), only_for="@alice:hs"
    )
    assert noted == [(position, frozenset({"@alice:hs"}))]
    for_alice = await store.users_changed(0, position, "@alice:hs", limit=10)
    assert for_alice is not None
    assert (for_alice.for_room_mates, for_alice.for_viewer) == (set(), {"@bob:hs"})
    for_carol = await store.users_changed(0, position, "@carol:hs", limit=10)
    assert for_carol is not None
    assert (for_carol.for_room_mates, for_carol.for_viewer) == (set(), set())
