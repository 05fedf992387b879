"""Persisting a room's event graph, on both engines."""

from __future__ import annotations

import pytest_twisted

from homeserver.events.event import Event
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, EventToPersist, PersistedEvent
from homeserver.storage.state import StateStore
from tests.events.dag_builder import ALICE, BOB, CHARLIE, DagBuilder, standard_room


async def persist_linear(
    db: Database, builder: DagBuilder
) -> tuple[EventStore, int, list[PersistedEvent]]:
    """Persist every event in order, each on top of the previous one's state."""
    store = EventStore(db, StateStore(db))
    room_nid = await store.create_room(builder.room_id, builder.room_version.identifier, 0)
    results: list[PersistedEvent] = []
    group: int | None = None
    for event in builder.events.values():
        if group is None:  # the create event: the state before it is empty
            group = await StateStore(db).store_state_group(room_nid, {})
        [persisted] = await store.persist_events(room_nid, [EventToPersist(event, group)])
        group = persisted.state_group_after
        results.append(persisted)
    assert group is not None
    await store.persist_events(room_nid, [], new_current_state_group=group)
    return store, room_nid, results


@pytest_twisted.ensureDeferred
async def test_linear_room_has_one_extremity_and_the_right_state(db: Database) -> None:
    builder = standard_room("10")
    store, room_nid, results = await persist_linear(db, builder)
    last = list(builder.events)[-1]
    assert await store.get_forward_extremities(room_nid) == [last]
    room = await store.get_room(builder.room_id)
    assert room is not None and room.current_state_group == results[-1].state_group_after
    assert await StateStore(db).get_state_ids(room.current_state_group) == builder.state(last)


@pytest_twisted.ensureDeferred
async def test_memberships_follow_current_state(db: Database) -> None:
    builder = standard_room("10")
    store, room_nid, _ = await persist_linear(db, builder)
    assert await store.get_room_members(room_nid) == sorted([ALICE, BOB, CHARLIE])
    assert await store.get_rooms_for_user(BOB) == [builder.room_id]
    assert await store.get_rooms_for_user("@stranger:test") == []


@pytest_twisted.ensureDeferred
async def test_leaving_updates_the_membership_index(db: Database) -> None:
    builder = standard_room("10")
    builder.member("L_BOB", BOB, "leave")
    store, room_nid, results = await persist_linear(db, builder)
    assert await store.get_room_members(room_nid) == sorted([ALICE, CHARLIE])
    assert await store.get_room_members(room_nid, "leave") == [BOB]


@pytest_twisted.ensureDeferred
async def test_stream_orderings_increase_in_persist_order(db: Database) -> None:
    _, _, results = await persist_linear(db, standard_room("10"))
    orderings = [r.stream_ordering for r in results]
    assert all(o is not None for o in orderings)
    assert orderings == sorted(orderings)  # type: ignore[type-var]


@pytest_twisted.ensureDeferred
async def test_events_read_back_byte_for_byte(db: Database) -> None:
    builder = standard_room("10")
    await persist_linear(db, builder)
    fresh = EventStore(db, StateStore(db))  # no cache: from the database
    loaded = await fresh.get_events(list(builder.events) + ["$unknown"])
    assert set(loaded) == set(builder.events)
    for event_id, event in builder.events.items():
        assert loaded[event_id].pdu == event.pdu
        assert loaded[event_id].room_version is event.room_version


@pytest_twisted.ensureDeferred
async def test_fork_gives_two_extremities_and_a_merge_one(db: Database) -> None:
    builder = standard_room("10")
    base = builder.last
    assert base is not None
    store, room_nid, results = await persist_linear(db, builder)
    group = results[-1].state_group_after
    topic_a = builder.topic("TA", ALICE, "a", prev=base)
    topic_b = builder.topic("TB", ALICE, "b", prev=base)
    for name in (topic_a, topic_b):
        await store.persist_events(room_nid, [EventToPersist(builder.events[name], group)])
    assert await store.get_forward_extremities(room_nid) == sorted([topic_a, topic_b])
    merge = builder.add(
        "M",
        "m.room.message",
        ALICE,
        {"body": "hi"},
        prev=[topic_a, topic_b],
        state=builder.state(topic_a),
    )
    await store.persist_events(room_nid, [EventToPersist(builder.events[merge], group)])
    assert await store.get_forward_extremities(room_nid) == [merge]


@pytest_twisted.ensureDeferred
async def test_outliers_and_soft_failed_events_leave_the_extremities_alone(db: Database) -> None:
    builder = standard_room("10")
    store, room_nid, results = await persist_linear(db, builder)
    group = results[-1].state_group_after
    soft = builder.topic("SOFT", ALICE, "s")
    builder.events[soft].internal.soft_failed = True
    outlier = builder.topic("OUT", ALICE, "o", prev=soft)
    builder.events[outlier].internal.outlier = True
    [soft_result] = await store.persist_events(
        room_nid, [EventToPersist(builder.events[soft], group)]
    )
    [out_result] = await store.persist_events(
        room_nid, [EventToPersist(builder.events[outlier], None)]
    )
    assert soft_result.state_group_after == group  # soft-failed: state unchanged
    assert out_result.stream_ordering is None
    # The room still continues from its last accepted event.
    assert await store.get_forward_extremities(room_nid) == [results[-1].event_id]


@pytest_twisted.ensureDeferred
async def test_transaction_ids_map_to_their_event(db: Database) -> None:
    builder = standard_room("10")
    store, room_nid, results = await persist_linear(db, builder)
    message = builder.add("MSG", "m.room.message", ALICE, {"body": "x"})
    event: Event = builder.events[message]
    event.internal.txn_id, event.internal.device_id = "txn1", "DEVICE"
    await store.persist_events(room_nid, [EventToPersist(event, results[-1].state_group_after)])
    scope = {"room_nid": room_nid, "event_type": "m.room.message"}
    assert await store.get_event_id_for_transaction(ALICE, "DEVICE", "txn1", **scope) == message
    assert await store.get_event_id_for_transaction(ALICE, "OTHER", "txn1", **scope) is None
    other_type = {"room_nid": room_nid, "event_type": "m.reaction"}
    assert await store.get_event_id_for_transaction(ALICE, "DEVICE", "txn1", **other_type) is None
