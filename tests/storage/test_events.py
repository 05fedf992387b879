"""Persisting a room's event graph, on both engines: the store writes what the
event path decided (tests/rooms/test_event_path.py covers the deciding)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
import pytest_twisted
from twisted.internet import defer

from homeserver.events.canonical import encode_canonical_json
from homeserver.events.event import Event, FrozenEventError, StateKey
from homeserver.storage.database import Database
from homeserver.storage.events import (
    CurrentStateChange,
    EventStore,
    EventToPersist,
    NewStateGroup,
    PersistedEvent,
    RoomBatch,
    StateGroupRef,
)
from homeserver.storage.group_commit import GroupCommitter
from homeserver.storage.state import StateStore, UnknownEventsError
from tests.events.dag_builder import ALICE, BOB, CHARLIE, DagBuilder, standard_room


def after(event: Event, before: StateGroupRef, state: Mapping[StateKey, str]) -> NewStateGroup:
    """The state group a state event makes on top of ``before`` (whose state is ``state``)."""
    return NewStateGroup(
        before,
        {event.state_key_tuple: event.event_id},
        {**state, event.state_key_tuple: event.event_id},
    )


async def persist_linear(
    db: Database, builder: DagBuilder, *, one_batch: bool = False
) -> tuple[EventStore, int, list[PersistedEvent]]:
    """Persist every event in order, each on top of the previous one's state, moving
    the current state and the extremity along."""
    store = EventStore(db, StateStore(db))
    room_nid = await store.create_room(builder.room_id, builder.room_version.identifier, 0)
    items: list[tuple[EventToPersist, list[str], CurrentStateChange | None]] = []
    group: StateGroupRef = NewStateGroup(None, {}, {})
    state: dict[StateKey, str] = {}
    previous = None
    for event in builder.events.values():
        group_after = after(event, group, state) if event.is_state() else group
        items.append(
            (
                EventToPersist(event, group, group_after),
                [previous] if previous else [],
                CurrentStateChange(group_after, {event.state_key_tuple: event.event_id})
                if event.is_state()
                else None,
            )
        )
        if event.is_state():
            state[event.state_key_tuple] = event.event_id
        group, previous = group_after, event.event_id
    results: list[PersistedEvent] = []
    if one_batch:
        changes = {key: event_id for key, event_id in state.items()}
        results = await store.persist_events(
            RoomBatch(
                room_nid,
                [item for item, _, _ in items],
                extremities_added=[previous] if previous else [],
                current_state=CurrentStateChange(group, changes),
            )
        )
        return store, room_nid, results
    for item, removed, current in items:
        results += await store.persist_events(
            RoomBatch(
                room_nid,
                [item],
                extremities_removed=removed,
                extremities_added=[item.event.event_id],
                current_state=current,
            )
        )
    return store, room_nid, results


async def assert_room_ends_with_the_last_event(
    db: Database,
    store: EventStore,
    builder: DagBuilder,
    room_nid: int,
    results: Sequence[PersistedEvent],
) -> None:
    """One extremity, the last event, and the current state is the state after it."""
    last = list(builder.events)[-1]
    assert await store.get_forward_extremities(room_nid) == [last]
    room = await store.get_room(builder.room_id)
    assert room is not None and room.current_state_group == results[-1].state_group_after
    assert room.current_state_group is not None
    assert await StateStore(db).get_state_ids(room.current_state_group) == builder.state(last)


@pytest_twisted.ensureDeferred
async def test_linear_room_has_one_extremity_and_the_right_state(db: Database) -> None:
    builder = standard_room("10")
    store, room_nid, results = await persist_linear(db, builder)
    await assert_room_ends_with_the_last_event(db, store, builder, room_nid, results)


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
        # The stored text is the canonical encoding, reused as is.
        assert loaded[event_id].canonical_json == encode_canonical_json(event.pdu)
        assert loaded[event_id].room_version is event.room_version


@pytest_twisted.ensureDeferred
async def test_one_batch_writes_the_same_as_event_by_event(db: Database) -> None:
    builder = standard_room("10")
    store, room_nid, results = await persist_linear(db, builder, one_batch=True)
    await assert_room_ends_with_the_last_event(db, store, builder, room_nid, results)
    assert await store.get_room_members(room_nid) == sorted([ALICE, BOB, CHARLIE])


def counting_commits(store: EventStore) -> list[int]:
    """Records how many room batches each transaction of ``store`` writes."""
    commits: list[int] = []
    write = store._persist_batches

    async def counted(batches: Sequence[RoomBatch]) -> list[list[PersistedEvent]]:
        commits.append(len(batches))
        return await write(batches)

    store._committer = GroupCommitter(counted)
    return commits


@pytest_twisted.ensureDeferred
async def test_batches_of_several_rooms_share_a_transaction_and_keep_their_order(
    db: Database,
) -> None:
    """Group commit: batches submitted while a transaction runs share the next one,
    and each room's events keep their order in the stream."""
    builder = standard_room("10")
    store = EventStore(db, StateStore(db))
    commits = counting_commits(store)
    room_nids = [await store.create_room(f"!room{i}:test", "10", 0) for i in range(3)]
    batches = []
    for index, room_nid in enumerate(room_nids * 2):
        names = [builder.add(f"M{index}_{n}", "m.room.message", ALICE, {"n": n}) for n in range(3)]
        items = [
            EventToPersist(builder.events[name], NewStateGroup(None, {}, {})) for name in names
        ]
        batches.append(RoomBatch(room_nid, items))
    results = await defer.gatherResults(
        [defer.ensureDeferred(store.persist_events(batch)) for batch in batches]
    )
    # The first batch ran alone; everything submitted meanwhile went in one more.
    assert commits == [1, 5]
    positions = [r.stream_ordering for room_results in results for r in room_results]
    assert None not in positions and positions == sorted(positions)  # type: ignore[type-var]
    assert len(set(positions)) == 18


@pytest_twisted.ensureDeferred
async def test_a_failing_batch_does_not_fail_the_batches_it_shared_a_transaction_with(
    db: Database,
) -> None:
    builder = standard_room("10")
    store, room_nid, results = await persist_linear(db, builder)
    commits = counting_commits(store)
    group = results[-1].state_group_after
    assert group is not None
    names = [builder.add(name, "m.room.message", ALICE, {}) for name in ("FIRST", "GOOD", "BAD")]
    first, good, bad = (builder.events[name] for name in names)
    # A state group naming an event nobody stored cannot be written.
    broken = NewStateGroup(group, {("m.room.topic", ""): "$missing"}, {})
    submitted = [
        defer.ensureDeferred(store.persist_events(RoomBatch(room_nid, [EventToPersist(e, g)])))
        for e, g in ((first, group), (good, group), (bad, broken))
    ]
    assert (await submitted[0])[0].stream_ordering is not None
    assert (await submitted[1])[0].stream_ordering is not None
    with pytest.raises(UnknownEventsError):
        await submitted[2]
    # GOOD and BAD shared a transaction that failed; each was then tried alone.
    assert commits == [1, 2, 1, 1]
    loaded = await EventStore(db, StateStore(db)).get_events(names)
    assert set(loaded) == set(names[:2])


@pytest_twisted.ensureDeferred
async def test_outliers_get_no_stream_position_nor_state(db: Database) -> None:
    builder = standard_room("10")
    store, room_nid, results = await persist_linear(db, builder)
    outlier = builder.topic("OUT", ALICE, "o")
    builder.events[outlier].internal.outlier = True
    [out_result] = await store.persist_events(
        RoomBatch(room_nid, [EventToPersist(builder.events[outlier], None)])
    )
    assert out_result.stream_ordering is None
    assert out_result.state_group_before is None and out_result.state_group_after is None
    # The room still continues from its last accepted event.
    assert await store.get_forward_extremities(room_nid) == [results[-1].event_id]


@pytest_twisted.ensureDeferred
async def test_transaction_ids_map_to_their_event(db: Database) -> None:
    builder = standard_room("10")
    store, room_nid, results = await persist_linear(db, builder)
    message = builder.add("MSG", "m.room.message", ALICE, {"body": "x"})
    event: Event = builder.events[message]
    event.internal.txn_id, event.internal.device_id = "txn1", "DEVICE"
    group = results[-1].state_group_after
    assert group is not None
    await store.persist_events(RoomBatch(room_nid, [EventToPersist(event, group)]))
    lookup = store.get_event_id_for_transaction
    in_room = {"room_nid": room_nid}
    assert await lookup(ALICE, "DEVICE", "txn1", **in_room, event_type="m.room.message") == message
    assert await lookup(ALICE, "OTHER", "txn1", **in_room, event_type="m.room.message") is None
    assert await lookup(ALICE, "DEVICE", "txn1", **in_room, event_type="m.reaction") is None


@pytest_twisted.ensureDeferred
async def test_stored_events_are_read_only(db: Database) -> None:
    """Stored events are shared through the cache: nobody may change what the
    server decided about them."""
    builder = standard_room("10")
    store, _, _ = await persist_linear(db, builder)
    written = builder.events[builder.last or ""]
    loaded = (await EventStore(db, StateStore(db)).get_events([written.event_id]))[written.event_id]
    for event in (written, loaded):
        with pytest.raises(FrozenEventError):
            event.internal.soft_failed = True
        assert not event.internal.soft_failed
