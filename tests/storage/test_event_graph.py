"""The graph reads federation serves (auth chains, state at an event, missing events,
backfill, PDUs, servers), on both engines, over a room Alice and Rita share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_twisted

from homeserver.events.event import Event
from homeserver.storage.database import Database
from homeserver.storage.event_graph import BACKFILL_QUERY, EventGraphStore
from homeserver.storage.state import StateStore
from homeserver.storage.transaction import Transaction
from tests.rooms.test_event_path import (
    ALICE,
    LOCAL,
    REMOTE,
    RITA,
    RemoteServer,
    Room,
    make_pipeline,
    room_with_rita,
)


@pytest.fixture
def remote() -> RemoteServer:
    return RemoteServer()


@pytest_twisted.async_yield_fixture
async def room(db: Database, remote: RemoteServer) -> AsyncIterator[Room]:
    yield await room_with_rita(db, make_pipeline(db), remote)


def graph(db: Database) -> EventGraphStore:
    return EventGraphStore(db, StateStore(db))


async def messages(room: Room, count: int) -> list[Event]:
    return [await room.send_local("m.room.message", {"body": str(n)}) for n in range(count)]


async def timeline_events(room: Room) -> list[Event]:
    ids = await room.timeline()
    loaded = await room.events.get_events(ids)
    return [loaded[i] for i in ids]


@pytest_twisted.ensureDeferred
async def test_auth_chain_of_a_message_is_its_create_power_and_membership_history(
    room: Room, db: Database
) -> None:
    [message] = await messages(room, 1)
    chain = await graph(db).get_auth_chain_ids([message.event_id])
    state = await room.current_state()
    expected = {
        state[("m.room.create", "")].event_id,
        state[("m.room.power_levels", "")].event_id,
        state[("m.room.member", f"@alice:{LOCAL}")].event_id,
    }
    assert expected <= chain
    assert message.event_id not in chain
    # Everything in it is an auth event of something in it, or of the message.
    loaded = await room.events.get_events(sorted(chain))
    cited = {a for e in [message, *loaded.values()] for a in e.auth_event_ids}
    assert chain == cited
    with_given = await graph(db).get_auth_chain_ids([message.event_id], include_given=True)
    assert with_given == chain | {message.event_id}


@pytest_twisted.ensureDeferred
async def test_state_before_an_event_excludes_the_event_itself(room: Room, db: Database) -> None:
    topic = await room.send_local("m.room.topic", {"topic": "t"}, "")
    after = await room.send_local("m.room.message", {"body": "after"})
    before_topic = await graph(db).get_state_ids_before(topic.event_id)
    assert before_topic is not None and ("m.room.topic", "") not in before_topic
    before_after = await graph(db).get_state_ids_before(after.event_id)
    assert before_after is not None and before_after[("m.room.topic", "")] == topic.event_id
    assert await graph(db).get_state_ids_before("$unknown") is None


@pytest_twisted.ensureDeferred
async def test_missing_events_walk_back_from_latest_to_earliest(room: Room, db: Database) -> None:
    sent = await messages(room, 6)
    found = await graph(db).get_missing_events(
        room.room_id,
        earliest=[sent[0].event_id],
        latest=[sent[-1].event_id],
        limit=10,
        min_depth=0,
    )
    assert [p.event_id for p in found] == [e.event_id for e in sent[1:-1]]
    limited = await graph(db).get_missing_events(
        room.room_id, earliest=[sent[0].event_id], latest=[sent[-1].event_id], limit=2, min_depth=0
    )
    # The nearest ones to latest.
    assert [p.event_id for p in limited] == [e.event_id for e in sent[-3:-1]]
    other_room = await graph(db).get_missing_events(
        "!other:example.org", earliest=[], latest=[sent[-1].event_id], limit=10, min_depth=0
    )
    assert other_room == []


@pytest_twisted.ensureDeferred
async def test_backfill_returns_history_up_to_the_given_events_newest_first(
    room: Room, db: Database
) -> None:
    sent = await messages(room, 5)
    page = await graph(db).get_backfill(room.room_id, [sent[2].event_id], limit=3)
    history = await timeline_events(room)
    upto = [e.event_id for e in history][
        : [e.event_id for e in history].index(sent[2].event_id) + 1
    ]
    assert [p.event_id for p in page] == list(reversed(upto))[:3]
    assert all(not p.outlier and p.room_id == room.room_id for p in page)


@pytest_twisted.ensureDeferred
async def test_pdu_json_is_the_stored_canonical_json(room: Room, db: Database) -> None:
    [message] = await messages(room, 1)
    pdus = await graph(db).get_pdu_json([message.event_id, "$nope"])
    assert set(pdus) == {message.event_id}
    assert pdus[message.event_id].json == message.canonical_json
    assert "unsigned" not in pdus[message.event_id].federation_pdu()
    assert pdus[message.event_id].references() == (
        message.prev_event_ids,
        message.auth_event_ids,
    )


@pytest_twisted.ensureDeferred
async def test_servers_in_the_room_now_and_at_an_event(
    room: Room, db: Database, remote: RemoteServer
) -> None:
    assert await graph(db).get_joined_servers(room.room_id) == {LOCAL, REMOTE}
    before_leave = await room.last()
    leave = remote.event(
        [before_leave],
        await room.current_state(),
        "m.room.member",
        RITA,
        {"membership": "leave"},
        RITA,
    )
    await room.pipeline.path.receive(room.room_id, [leave])
    assert await graph(db).get_joined_servers(room.room_id) == {LOCAL}
    assert await graph(db).get_servers_at(before_leave.event_id) == frozenset({LOCAL, REMOTE})
    assert await graph(db).get_servers_at(leave.event_id) == frozenset({LOCAL})
    assert await graph(db).get_servers_at("$unknown") is None


def _backfill_plan_txn(txn: Transaction) -> str:
    args = (1, 10, False, 10)
    if txn.engine.dialect == "sqlite":
        txn.execute("EXPLAIN QUERY PLAN " + BACKFILL_QUERY, args)
        return " ".join(str(row[-1]) for row in txn.fetchall())
    # An empty table is cheapest to scan; ask whether the index can serve the query.
    txn.execute("SET LOCAL enable_seqscan = off")
    txn.execute("EXPLAIN " + BACKFILL_QUERY, args)
    return " ".join(str(row[0]) for row in txn.fetchall())


@pytest_twisted.ensureDeferred
async def test_a_backfill_page_reads_the_graph_index_in_order(db: Database) -> None:
    plan = await db.run_interaction("plan", _backfill_plan_txn)
    assert "events_by_room_graph" in plan, plan
    # Read in the index's order: no sort of the room's history.
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


@pytest_twisted.ensureDeferred
async def test_a_v12_auth_chain_includes_the_create_event_the_room_id_names(
    db: Database,
) -> None:
    pipeline = make_pipeline(db)
    [created, *_] = await pipeline.create_room("12", ALICE, {})
    room = Room(db, pipeline, created.event.room_id)
    await room.send_local("m.room.member", {"membership": "join"}, ALICE)
    [message] = await messages(room, 1)
    assert created.event.event_id not in message.auth_event_ids
    chain = await graph(db).get_auth_chain_ids([message.event_id])
    assert created.event.event_id in chain
