"""Rooms joined with partial state: recording them, and completing their state
groups and membership index, on both engines.

spec: data/api/server-server/joins-v2.yaml (omit_members)
"""

from __future__ import annotations

import pytest_twisted

from homeserver.events.event import Event, StateKey
from homeserver.storage.database import Database
from homeserver.storage.event_graph import EventGraphStore
from homeserver.storage.events import EventStore
from homeserver.storage.partial_state import PartialStateRoom, PartialStateStore
from homeserver.storage.state import StateStore
from tests.events.dag_builder import BOB, CHARLIE
from tests.storage.test_state import outlier_room

ROOM = "!partial:example.org"


async def stored_room(
    db: Database,
) -> tuple[StateStore, EventStore, int, str, dict[str, Event]]:
    """A room's events persisted as outliers, so state groups can name them."""
    state, events, room_nid, builder = await outlier_room(db)
    return (
        state,
        events,
        room_nid,
        builder.room_id,
        {
            name: builder.events[builder.id(name)]
            for name in ("CREATE", "IMA", "PL0", "JR0", "J_BOB", "J_CHARLIE")
        },
    )


def partial_record(room_id: str, join_event_id: str) -> PartialStateRoom:
    return PartialStateRoom(
        room_id=room_id,
        join_event_id=join_event_id,
        joined_via="resident.example.org",
        servers_in_room=frozenset({"resident.example.org", "third.example.org"}),
    )


async def set_current_group(db: Database, room_nid: int, group: int) -> None:
    await db.execute(
        "set_current",
        "UPDATE rooms SET current_state_group = ? WHERE room_nid = ?",
        group,
        room_nid,
    )


@pytest_twisted.ensureDeferred
async def test_a_marked_room_is_partial_until_completed(db: Database) -> None:
    state, events, room_nid, room_id, dag = await stored_room(db)
    store = PartialStateStore(db, state=state, events=events)
    assert not await store.is_partial(room_id)
    record = partial_record(room_id, dag["J_CHARLIE"].event_id)
    await store.mark(record, now_ms=1)

    fresh = PartialStateStore(db, state=state, events=events)
    assert await fresh.get(room_id) == record
    assert await fresh.all_rooms() == [record]
    assert await fresh.servers_while_partial(room_id) == record.servers_in_room

    full = {e.state_key_tuple: e.event_id for e in dag.values()}
    group = await state.store_state_group(room_nid, full)
    await store.complete(room_id, room_nid, group, {})
    assert not await store.is_partial(room_id)
    assert not await PartialStateStore(db, state=state, events=events).is_partial(room_id)
    assert await store.servers_while_partial(room_id) == frozenset()


@pytest_twisted.ensureDeferred
async def test_unmarking_forgets_a_join_that_was_not_stored(db: Database) -> None:
    state, events, _room_nid, room_id, dag = await stored_room(db)
    store = PartialStateStore(db, state=state, events=events)
    await store.mark(partial_record(room_id, dag["J_CHARLIE"].event_id), now_ms=1)
    await store.unmark(room_id)
    assert await PartialStateStore(db, state=state, events=events).all_rooms() == []


@pytest_twisted.ensureDeferred
async def test_completing_adds_the_omitted_members_to_every_group_since_the_join(
    db: Database,
) -> None:
    """The groups since the join are a snapshot and a delta on it: both read back
    whole after completion, from the cache and from the database, and the missing
    member enters the membership index."""
    state, events, room_nid, room_id, dag = await stored_room(db)
    full = {e.state_key_tuple: e.event_id for e in dag.values()}
    bob_key: StateKey = ("m.room.member", BOB)
    partial = {key: event_id for key, event_id in full.items() if key != bob_key}
    # The join's state (a snapshot), then a later change on top of it.
    join_group = await state.store_state_group(room_nid, partial)
    later = {**partial, ("m.room.topic", ""): dag["PL0"].event_id}
    later_group = await state.store_state_group(room_nid, later, base_group=join_group)
    await set_current_group(db, room_nid, later_group)
    store = PartialStateStore(db, state=state, events=events)
    await store.mark(partial_record(room_id, dag["J_CHARLIE"].event_id), now_ms=1)

    added = await store.complete(room_id, room_nid, join_group, {bob_key: full[bob_key]})

    assert added == [BOB]
    assert await state.get_state_ids(join_group) == full
    assert await state.get_state_ids(later_group) == {**later, bob_key: full[bob_key]}
    assert await StateStore(db).get_state_ids(later_group) == {**later, bob_key: full[bob_key]}
    assert BOB in await events.get_room_members(room_nid)


@pytest_twisted.ensureDeferred
async def test_a_membership_changed_since_the_join_keeps_its_newer_event(db: Database) -> None:
    """A key the room's later state already has (the member left after we joined)
    is not overwritten by the state at the join."""
    state, events, room_nid, room_id, dag = await stored_room(db)
    full = {e.state_key_tuple: e.event_id for e in dag.values()}
    charlie_key: StateKey = ("m.room.member", CHARLIE)
    partial = {key: event_id for key, event_id in full.items() if key != charlie_key}
    join_group = await state.store_state_group(room_nid, partial)
    # Stands in for Charlie's newer membership event: any other stored event.
    newer = dag["JR0"].event_id
    later = {**partial, charlie_key: newer}
    later_group = await state.store_state_group(room_nid, later, base_group=join_group)
    await set_current_group(db, room_nid, later_group)
    store = PartialStateStore(db, state=state, events=events)
    await store.mark(partial_record(room_id, dag["J_BOB"].event_id), now_ms=1)

    added = await store.complete(room_id, room_nid, join_group, {charlie_key: full[charlie_key]})

    assert added == []
    assert (await StateStore(db).get_state_ids(join_group))[charlie_key] == full[charlie_key]
    assert (await StateStore(db).get_state_ids(later_group))[charlie_key] == newer


@pytest_twisted.ensureDeferred
async def test_the_servers_in_room_count_as_joined_while_the_room_is_partial(
    db: Database,
) -> None:
    """Typing, receipts and device lists go to the servers a room's members are
    on: while the member list is partial, those the resident named too."""
    state, events, _room_nid, room_id, dag = await stored_room(db)
    graph = EventGraphStore(db, state)
    store = PartialStateStore(db, state=state, events=events)
    record = partial_record(room_id, dag["J_CHARLIE"].event_id)
    await store.mark(record, now_ms=1)
    assert await graph.get_joined_servers(room_id) == record.servers_in_room
    await store.unmark(room_id)
    assert await graph.get_joined_servers(room_id) == frozenset()
