"""State groups as snapshots plus deltas, on both engines."""

from __future__ import annotations

import pytest
import pytest_twisted

from homeserver.events.event import Event
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, EventToPersist, RoomBatch
from homeserver.storage.state import MIN_SNAPSHOT_ROWS, StateStore, UnknownEventsError
from tests.events.dag_builder import DagBuilder, standard_room


async def outlier_room(db: Database) -> tuple[StateStore, EventStore, int, DagBuilder]:
    """The standard room's events persisted as outliers, so state groups can refer
    to them: the stores, the room's nid and the room."""
    builder = standard_room("10")
    state = StateStore(db)
    events = EventStore(db, state)
    room_nid = await events.create_room(builder.room_id, "10", 0)
    for event in builder.events.values():
        event.internal.outlier = True
    await events.persist_events(
        RoomBatch(room_nid, [EventToPersist(e, None) for e in builder.events.values()])
    )
    return state, events, room_nid, builder


async def stored_room(db: Database) -> tuple[StateStore, int, dict[str, Event]]:
    state, _events, room_nid, builder = await outlier_room(db)
    return state, room_nid, builder.events


@pytest_twisted.ensureDeferred
async def test_snapshot_reads_back_equal(db: Database) -> None:
    state, room_nid, events = await stored_room(db)
    full = {e.state_key_tuple: e.event_id for e in events.values()}
    group = await state.store_state_group(room_nid, full)
    assert await StateStore(db).get_state_ids(group) == full


@pytest_twisted.ensureDeferred
async def test_delta_stores_only_changes_and_reads_whole_state(db: Database) -> None:
    state, room_nid, events = await stored_room(db)
    items = list(events.values())
    base = {e.state_key_tuple: e.event_id for e in items[:-1]}
    base_group = await state.store_state_group(room_nid, base)
    full = {**base, items[-1].state_key_tuple: items[-1].event_id}
    group = await state.store_state_group(room_nid, full, base_group=base_group)
    rows = await db.execute(
        "entries", "SELECT COUNT(*) FROM state_group_entries WHERE state_group = ?", group
    )
    assert rows == [(1,)]
    assert await StateStore(db).get_state_ids(group) == full


@pytest_twisted.ensureDeferred
async def test_delta_can_remove_a_key(db: Database) -> None:
    state, room_nid, events = await stored_room(db)
    full = {e.state_key_tuple: e.event_id for e in events.values()}
    base_group = await state.store_state_group(room_nid, full)
    smaller = dict(full)
    removed = next(iter(smaller))
    del smaller[removed]
    group = await state.store_state_group(room_nid, smaller, base_group=base_group)
    assert await StateStore(db).get_state_ids(group) == smaller


@pytest_twisted.ensureDeferred
async def test_long_delta_chains_are_cut_by_a_snapshot(db: Database) -> None:
    state, room_nid, events = await stored_room(db)
    items = list(events.values())
    full = {e.state_key_tuple: e.event_id for e in items}
    group = await state.store_state_group(room_nid, full)
    # Alternate one key between two events so every group is a one-entry delta.
    key = items[-1].state_key_tuple
    for step in range(MIN_SNAPSHOT_ROWS + 5):
        full = {**full, key: items[step % 2].event_id}
        group = await state.store_state_group(room_nid, full, base_group=group)
    # A small state: the chain is cut once its deltas reach the minimum.
    lengths = await db.execute(
        "lengths", "SELECT MAX(chain_length) FROM state_groups WHERE room_nid = ?", room_nid
    )
    assert lengths == [(MIN_SNAPSHOT_ROWS,)]
    assert await StateStore(db).get_state_ids(group) == full


async def entry_rows(db: Database, room_nid: int) -> int:
    rows = await db.execute(
        "entries",
        "SELECT COUNT(*) FROM state_group_entries e"
        " JOIN state_groups g ON g.state_group = e.state_group WHERE g.room_nid = ?",
        room_nid,
    )
    return int(rows[0][0])


@pytest_twisted.ensureDeferred
async def test_a_large_state_is_not_rewritten_for_small_changes(db: Database) -> None:
    """A 1,000-member room: 300 membership changes cost 300 rows, not a snapshot
    of 1,000 every few dozen changes."""
    state, room_nid, events = await stored_room(db)
    first, second = list(events.values())[:2]
    # The store does not care which event a key maps to: 1,000 member keys will do.
    full = {("m.room.member", f"@u{i}:example.org"): first.event_id for i in range(1000)}
    group = await state.store_state_group(room_nid, full)
    for step in range(300):
        full = {**full, ("m.room.member", "@u0:example.org"): (second, first)[step % 2].event_id}
        group = await state.store_state_group(room_nid, full, base_group=group)
    assert await entry_rows(db, room_nid) == 1000 + 300
    assert await StateStore(db).get_state_ids(group) == full


@pytest_twisted.ensureDeferred
async def test_deltas_outweighing_the_snapshot_cut_the_chain(db: Database) -> None:
    state, room_nid, events = await stored_room(db)
    first, second = list(events.values())[:2]
    full = {("m.room.member", f"@u{i}:example.org"): first.event_id for i in range(200)}
    group = await state.store_state_group(room_nid, full)
    # Two-entry deltas: the 101st brings the chain's deltas past the 200-row snapshot.
    for step in range(101):
        changed = (first, second)[(step + 1) % 2].event_id
        full = {
            **full,
            ("m.room.member", "@u0:example.org"): changed,
            ("m.room.member", "@u1:example.org"): changed,
        }
        group = await state.store_state_group(room_nid, full, base_group=group)
    snapshots = await db.execute(
        "snapshots",
        "SELECT COUNT(*) FROM state_groups WHERE room_nid = ? AND prev_state_group IS NULL",
        room_nid,
    )
    assert snapshots == [(2,)]
    assert await entry_rows(db, room_nid) == 200 + 100 * 2 + 200
    assert await StateStore(db).get_state_ids(group) == full


@pytest_twisted.ensureDeferred
async def test_state_naming_unknown_events_is_refused(db: Database) -> None:
    state, room_nid, _ = await stored_room(db)
    with pytest.raises(UnknownEventsError):
        await state.store_state_group(room_nid, {("m.room.topic", ""): "$nope"})


@pytest_twisted.ensureDeferred
async def test_unknown_group_is_a_key_error(db: Database) -> None:
    with pytest.raises(KeyError):
        await StateStore(db).get_state_ids(123456)


@pytest_twisted.ensureDeferred
async def test_reading_a_few_keys_along_the_chain_matches_the_whole_state(db: Database) -> None:
    """Keys changed, removed and never stored, read uncached along a delta chain,
    answer what the whole state says."""
    state, room_nid, events = await stored_room(db)
    items = list(events.values())
    full = {e.state_key_tuple: e.event_id for e in items}
    group = await state.store_state_group(room_nid, full)
    changed, removed = items[-1].state_key_tuple, items[1].state_key_tuple
    groups = [group]
    for step in range(5):
        full = {**full, changed: items[step % 2].event_id}
        if step == 3:
            del full[removed]
        groups.append(await state.store_state_group(room_nid, full, base_group=groups[-1]))
    keys = [changed, removed, items[0].state_key_tuple, ("m.room.topic", "never stored")]
    for group in groups:
        whole = await StateStore(db).get_state_ids(group)
        expected = {key: whole[key] for key in keys if key in whole}
        assert await StateStore(db).get_state_for_keys(group, keys) == expected
    # The last group's answer: the final value of the changed key, the removal kept.
    last = await StateStore(db).get_state_for_keys(groups[-1], keys)
    assert last[changed] == items[0].event_id and removed not in last
