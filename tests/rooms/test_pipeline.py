"""The local event pipeline on both engines: rooms created, events checked and chained."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_twisted
from signedjson.key import generate_signing_key
from twisted.internet import defer, reactor

from homeserver.clock import Clock
from homeserver.events.auth import AuthError
from homeserver.events.event import Event
from homeserver.events.format import event_from_pdu
from homeserver.events.hashing import reference_hashes
from homeserver.events.signing import sign_event
from homeserver.rooms.builder import EventDraft, new_v1_event_id
from homeserver.rooms.pipeline import (
    EventPipeline,
    InitialEvent,
    InitialEventRefused,
    SentEvent,
    UnknownRoomError,
)
from homeserver.storage.database import Database
from homeserver.storage.events import (
    EventStore,
    PersistedEvent,
    PredecessorFailedError,
    RoomBatch,
)
from homeserver.storage.state import StateStore

ALICE = "@alice:example.org"
BOB = "@bob:example.org"


@pytest_twisted.async_yield_fixture
async def pipeline(db: Database) -> AsyncIterator[EventPipeline]:
    state = StateStore(db)
    yield EventPipeline(
        server_name="example.org",
        signing_key=generate_signing_key("a_test"),
        clock=Clock(reactor),
        events=EventStore(db, state),
        state=state,
    )


async def send(
    p: EventPipeline,
    room_id: str,
    event_type: str,
    sender: str,
    content: dict[str, Any],
    state_key: str | None = None,
) -> SentEvent:
    return await p.send(EventDraft(room_id, event_type, sender, content, state_key=state_key))


async def public_room(p: EventPipeline, version: str = "10") -> str:
    """Alice creates a public room, Bob joins."""
    [created, *_] = await p.create_room(version, ALICE, {})
    room_id = created.event.room_id
    await send(p, room_id, "m.room.member", ALICE, {"membership": "join"}, ALICE)
    await send(
        p,
        room_id,
        "m.room.power_levels",
        ALICE,
        {"users": {ALICE: 100}} if version != "12" else {},
        "",
    )
    await send(p, room_id, "m.room.join_rules", ALICE, {"join_rule": "public"}, "")
    await send(p, room_id, "m.room.member", BOB, {"membership": "join"}, BOB)
    return room_id


@pytest.mark.parametrize("version", ["1", "2", "10", "11", "12"])
@pytest_twisted.ensureDeferred
async def test_members_can_talk_in_a_new_room(pipeline: EventPipeline, version: str) -> None:
    room_id = await public_room(pipeline, version)
    sent = await send(pipeline, room_id, "m.room.message", BOB, {"msgtype": "m.text", "body": "hi"})
    assert sent.event.room_id == room_id
    if version == "12":
        assert ":" not in room_id  # derived from the create event


@pytest_twisted.ensureDeferred
async def test_kicked_member_cannot_send(pipeline: EventPipeline, db: Database) -> None:
    room_id = await public_room(pipeline)
    await send(pipeline, room_id, "m.room.member", ALICE, {"membership": "leave"}, BOB)
    before = await db.execute("count", "SELECT COUNT(*) FROM events")
    with pytest.raises(AuthError):
        await send(pipeline, room_id, "m.room.message", BOB, {"body": "still here?"})
    assert await db.execute("count", "SELECT COUNT(*) FROM events") == before


@pytest_twisted.ensureDeferred
async def test_muted_member_cannot_send(pipeline: EventPipeline) -> None:
    room_id = await public_room(pipeline)
    await send(
        pipeline,
        room_id,
        "m.room.power_levels",
        ALICE,
        {"users": {ALICE: 100}, "events_default": 10},
        "",
    )
    with pytest.raises(AuthError):
        await send(pipeline, room_id, "m.room.message", BOB, {"body": "muted"})
    await send(pipeline, room_id, "m.room.message", ALICE, {"body": "admins still talk"})


@pytest_twisted.ensureDeferred
async def test_concurrent_sends_form_one_chain(pipeline: EventPipeline, db: Database) -> None:
    room_id = await public_room(pipeline)
    sent = await defer.gatherResults(
        [
            defer.ensureDeferred(send(pipeline, room_id, "m.room.message", BOB, {"body": str(i)}))
            for i in range(10)
        ]
    )
    ordered = sorted(sent, key=lambda s: s.stream_ordering)
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        assert later.event.prev_event_ids == [earlier.event.event_id]
    rows = await db.execute("x", "SELECT COUNT(*) FROM forward_extremities")
    assert rows == [(1,)]


def count_writes(store: EventStore, failing_body: str | None = None) -> list[int]:
    """Record the room batches each transaction of ``store`` writes; a transaction
    holding a message with ``failing_body`` fails (as a full disk would)."""
    writes: list[int] = []
    write = store._write_batches

    async def counted(batches: Sequence[RoomBatch]) -> list[list[PersistedEvent]]:
        writes.append(len(batches))
        bodies = {item.event.content.get("body") for b in batches for item in b.events}
        if failing_body is not None and failing_body in bodies:
            raise RuntimeError("disk full")
        return await write(batches)

    store._write_batches = counted  # type: ignore[method-assign]
    return writes


@pytest_twisted.ensureDeferred
async def test_concurrent_sends_in_one_room_share_transactions(
    pipeline: EventPipeline, db: Database
) -> None:
    """Each send is decided on top of the ones still being written, so they need not
    wait for one another's commit: several go in one transaction, in order."""
    room_id = await public_room(pipeline)
    writes = count_writes(pipeline._events)
    sent = await defer.gatherResults(
        [
            defer.ensureDeferred(send(pipeline, room_id, "m.room.message", BOB, {"body": str(i)}))
            for i in range(10)
        ]
    )
    assert sum(writes) == 10 and len(writes) < 10
    ordered = sorted(sent, key=lambda s: s.stream_ordering)
    assert [s.event.content["body"] for s in ordered] == [str(i) for i in range(10)]
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        assert later.event.prev_event_ids == [earlier.event.event_id]


@pytest_twisted.ensureDeferred
async def test_a_failed_write_fails_the_sends_decided_on_it_and_the_room_recovers(
    pipeline: EventPipeline, db: Database
) -> None:
    room_id = await public_room(pipeline)
    [last_stored] = await pipeline._events.get_forward_extremities(
        (await pipeline._events.get_room(room_id)).room_nid  # type: ignore[union-attr]
    )
    count_writes(pipeline._events, failing_body="0")
    attempts = [
        defer.ensureDeferred(send(pipeline, room_id, "m.room.message", BOB, {"body": str(i)}))
        for i in range(5)
    ]
    with pytest.raises(RuntimeError, match="disk full"):
        await attempts[0]
    landed = []
    for attempt in attempts[1:]:
        try:
            landed.append(await attempt)
        except PredecessorFailedError:
            # Decided on top of the failed write: refused with it.
            assert not landed
    # Some were decided on the failed write (they fail), the rest after the room
    # restarted from what is stored: those follow the last stored event.
    if landed:
        assert landed[0].event.prev_event_ids == [last_stored]
    # Nothing stored cites an event that was not stored.
    rows = await db.execute("x", "SELECT event_id FROM events WHERE type = 'm.room.message'")
    stored = await EventStore(db, StateStore(db)).get_events([row[0] for row in rows])
    cited = {prev for event in stored.values() for prev in event.prev_event_ids}
    assert cited <= set(await EventStore(db, StateStore(db)).get_events(list(cited)))
    after = await send(pipeline, room_id, "m.room.message", BOB, {"body": "again"})
    assert after.event.prev_event_ids == [landed[-1].event.event_id if landed else last_stored]


@pytest_twisted.ensureDeferred
async def test_a_fork_is_merged_by_the_next_send(pipeline: EventPipeline, db: Database) -> None:
    room_id = await public_room(pipeline)
    first = await send(pipeline, room_id, "m.room.topic", ALICE, {"topic": "one"}, "")
    # Another branch from the same parent, as if it arrived over federation.
    events = pipeline._events
    room = await events.get_room(room_id)
    assert room is not None
    branch_pdu = dict(first.event.pdu)
    branch_pdu["content"] = {"topic": "two"}
    branch_pdu["origin_server_ts"] += 1
    from homeserver.events.hashing import compute_event_id

    branch = Event(
        branch_pdu, first.event.room_version, compute_event_id(branch_pdu, first.event.room_version)
    )
    [received] = await pipeline.path.receive(room_id, [branch])
    assert received.outcome is not None and received.outcome.is_accepted
    assert len(await events.get_forward_extremities(room.room_nid)) == 2
    merged = await send(pipeline, room_id, "m.room.message", BOB, {"body": "merge"})
    assert sorted(merged.event.prev_event_ids) == sorted([first.event.event_id, branch.event_id])
    assert await events.get_forward_extremities(room.room_nid) == [merged.event.event_id]


@pytest.mark.parametrize("version", ["1", "2"])
@pytest_twisted.ensureDeferred
async def test_v1_format_fork_is_merged_with_reference_hash_pairs(
    pipeline: EventPipeline, db: Database, version: str
) -> None:
    """Rooms v1/v2: the merge resolves the fork (state res v1 resp. v2) and its
    ``prev_events``/``auth_events`` name each event with its stored reference hash."""
    room_id = await public_room(pipeline, version)
    first = await send(pipeline, room_id, "m.room.topic", ALICE, {"topic": "one"}, "")
    room_version = first.event.room_version
    assert first.event.pdu["event_id"] == first.event.event_id
    assert first.event.event_id.endswith(":example.org")
    events = pipeline._events
    room = await events.get_room(room_id)
    assert room is not None
    branch_pdu = {
        key: value for key, value in first.event.pdu.items() if key not in ("hashes", "signatures")
    }
    branch_pdu["content"] = {"topic": "two"}
    branch_pdu["event_id"] = new_v1_event_id("example.org")
    sign_event(branch_pdu, "example.org", pipeline._signing_key, room_version)
    branch = event_from_pdu(branch_pdu, room_version)
    await pipeline.path.receive(room_id, [branch])
    merged = await send(pipeline, room_id, "m.room.message", BOB, {"body": "merge"})
    stored = await events.get_events([*merged.event.prev_event_ids, *merged.event.auth_event_ids])
    for reference in [*merged.event.pdu["prev_events"], *merged.event.pdu["auth_events"]]:
        event_id, hashes = reference
        assert hashes == reference_hashes(stored[event_id].pdu, room_version)
    assert sorted(merged.event.prev_event_ids) == sorted([first.event.event_id, branch.event_id])
    assert await events.get_forward_extremities(room.room_nid) == [merged.event.event_id]
    [after] = (await events.get_state_groups_after([merged.event.event_id])).values()
    topic = (await StateStore(db).get_state_ids(after))[("m.room.topic", "")]
    assert topic in (first.event.event_id, branch.event_id)


@pytest_twisted.ensureDeferred
async def test_new_events_are_announced_in_stream_order(pipeline: EventPipeline) -> None:
    seen: list[tuple[str, int]] = []
    pipeline.on_new_event.append(lambda event, position: seen.append((event.type, position)))
    await public_room(pipeline)
    positions = [position for _, position in seen]
    assert positions == sorted(positions) and len(seen) == 5
    assert seen[0][0] == "m.room.create"


@pytest_twisted.ensureDeferred
async def test_sending_to_an_unknown_room_fails(pipeline: EventPipeline) -> None:
    with pytest.raises(UnknownRoomError):
        await send(pipeline, "!nope:example.org", "m.room.message", ALICE, {})


def _initial_public_room(version: str) -> list[InitialEvent]:
    levels = {"users": {ALICE: 100}} if version != "12" else {}
    return [
        InitialEvent("m.room.member", ALICE, {"membership": "join"}, ALICE),
        InitialEvent("m.room.power_levels", ALICE, levels, ""),
        InitialEvent("m.room.join_rules", ALICE, {"join_rule": "public"}, ""),
        InitialEvent("m.room.name", ALICE, {"name": "first"}, ""),
        InitialEvent("m.room.name", ALICE, {"name": "second"}, ""),
    ]


@pytest.mark.parametrize("version", ["1", "2", "10", "12"])
@pytest_twisted.ensureDeferred
async def test_a_room_created_with_its_initial_events_is_one_chain(
    pipeline: EventPipeline, db: Database, version: str
) -> None:
    announced: list[int] = []
    pipeline.on_new_event.append(lambda event, position: announced.append(position))
    sent = await pipeline.create_room(version, ALICE, {}, _initial_public_room(version))
    events = [s.event for s in sent]
    room_id = events[0].room_id
    assert [e.type for e in events][:2] == ["m.room.create", "m.room.member"]
    for earlier, later in zip(events, events[1:], strict=False):
        assert later.prev_event_ids == [earlier.event_id]
        assert later.depth == earlier.depth + 1
    assert announced == [s.stream_ordering for s in sent] == sorted(announced)
    first_name, second_name = events[-2], events[-1]
    assert second_name.internal.replaces_state == first_name.event_id
    assert first_name.internal.replaces_state is None
    store = pipeline._events
    room = await store.get_room(room_id)
    assert room is not None
    assert await store.get_forward_extremities(room.room_nid) == [second_name.event_id]
    # The stored state after the chain is every event's, the later name winning.
    [group] = (await store.get_state_groups_after([second_name.event_id])).values()
    state = await StateStore(db).get_state_ids(group)
    assert state[("m.room.name", "")] == second_name.event_id
    assert state[("m.room.member", ALICE)] == events[1].event_id
    assert len(state) == 5  # create, member, power levels, join rules, name
    # The room works like any other: Bob joins (public) and talks.
    await send(pipeline, room_id, "m.room.member", BOB, {"membership": "join"}, BOB)
    await send(pipeline, room_id, "m.room.message", BOB, {"body": "hello"})


@pytest_twisted.ensureDeferred
async def test_a_refused_initial_event_stores_nothing(
    pipeline: EventPipeline, db: Database
) -> None:
    [before] = await db.execute("x", "SELECT COUNT(*) FROM events")
    reserved: list[str] = []

    async def reserve(room_id: str) -> None:
        reserved.append(room_id)

    initial = _initial_public_room("10")
    # Bob was never invited to this room: his message is refused, the fifth event.
    initial.insert(3, InitialEvent("m.room.message", BOB, {"body": "sneaky"}))
    with pytest.raises(InitialEventRefused) as refused:
        await pipeline.create_room("10", ALICE, {}, initial, before_persist=reserve)
    assert refused.value.index == 3
    assert isinstance(refused.value.cause, AuthError)
    assert reserved == []
    assert await db.execute("x", "SELECT COUNT(*) FROM events") == [before]
    assert await db.execute("x", "SELECT COUNT(*) FROM rooms") == [(0,)]


RITA = "@rita:remote.test"


@pytest_twisted.ensureDeferred
async def test_events_checked_after_the_initial_ones_are_not_stored(
    pipeline: EventPipeline,
) -> None:
    """``checked_after``: a remote invite is checked with the batch, sent later."""
    initial = _initial_public_room("10")
    invite = InitialEvent("m.room.member", ALICE, {"membership": "invite"}, RITA)
    sent = await pipeline.create_room("10", ALICE, {}, initial, checked_after=[invite])
    assert [s.event.type for s in sent] == ["m.room.create"] + [i.event_type for i in initial]
    room = await pipeline._events.get_room(sent[0].event.room_id)
    assert room is not None
    assert await pipeline._events.get_forward_extremities(room.room_nid) == [
        sent[-1].event.event_id
    ]


@pytest_twisted.ensureDeferred
async def test_a_refused_event_checked_after_the_initial_ones_stores_nothing(
    pipeline: EventPipeline, db: Database
) -> None:
    [before] = await db.execute("x", "SELECT COUNT(*) FROM events")
    initial = _initial_public_room("10")
    initial[1] = InitialEvent(
        "m.room.power_levels", ALICE, {"users": {ALICE: 100}, "invite": 101}, ""
    )
    invite = InitialEvent("m.room.member", ALICE, {"membership": "invite"}, RITA)
    with pytest.raises(InitialEventRefused) as refused:
        await pipeline.create_room("10", ALICE, {}, initial, checked_after=[invite])
    assert (refused.value.index, refused.value.initial) == (len(initial), invite)
    assert await db.execute("x", "SELECT COUNT(*) FROM events") == [before]
    assert await db.execute("x", "SELECT COUNT(*) FROM rooms") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_prev_events_are_the_most_recent_extremities_by_depth(
    pipeline: EventPipeline, db: Database
) -> None:
    """With more forward extremities than an event may reference, the new event
    points at the deepest ones (not, say, the lexically last IDs) and leaves the
    rest as extremities for a later merge."""
    from homeserver.events.hashing import compute_event_id
    from homeserver.rooms.builder import MAX_PREV_EVENTS

    room_id = await public_room(pipeline)
    chain = [
        await send(pipeline, room_id, "m.room.message", ALICE, {"body": f"m{i}"}) for i in range(30)
    ]
    events = pipeline._events
    room = await events.get_room(room_id)
    assert room is not None
    # A branch off each of the first 25 messages: 25 extremities of growing depth,
    # plus the chain's head.
    branches = []
    for i in range(25):
        child = chain[i + 1].event
        pdu = dict(child.pdu)
        pdu["content"] = {"body": f"branch {i}"}
        # The ID hashes the redacted event, which has no content: change a kept key.
        pdu["origin_server_ts"] += 1
        branch = Event(pdu, child.room_version, compute_event_id(pdu, child.room_version))
        await pipeline.path.receive(room_id, [branch])
        branches.append(branch)
    assert len(await events.get_forward_extremities(room.room_nid)) == 26

    merged = await send(pipeline, room_id, "m.room.message", BOB, {"body": "merge"})
    deepest = [chain[-1].event.event_id] + [b.event_id for b in branches[-(MAX_PREV_EVENTS - 1) :]]
    assert sorted(merged.event.prev_event_ids) == sorted(deepest)
    assert merged.event.depth == chain[-1].event.depth + 1
    left = set(await events.get_forward_extremities(room.room_nid))
    assert left == {merged.event.event_id} | {
        b.event_id for b in branches[: 25 - (MAX_PREV_EVENTS - 1)]
    }
