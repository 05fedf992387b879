"""Backfilled history: ``EventPath.receive_backfill``, on both engines.

Bob (ours) joined remote.test's room through it, so we hold the room's state as
outliers and nothing of its history; then its history arrives, as ``/backfill``
answers (newest first).
"""

from __future__ import annotations

import pytest
import pytest_twisted

from homeserver.auth.tokens import Requester
from homeserver.events.event import Event
from homeserver.filtering.model import RoomEventFilter
from homeserver.rooms.pipeline import EventPipeline
from homeserver.storage.database import Database
from tests.rooms.test_event_path import (
    REMOTE,
    RITA,
    HeldBy,
    RemoteServer,
    Room,
    make_pipeline,
)
from tests.rooms.test_joined_room import BOB, RemoteRoom


@pytest.fixture
def remote() -> RemoteServer:
    return RemoteServer()


async def joined(db: Database, remote: RemoteServer) -> tuple[EventPipeline, RemoteRoom, Room]:
    source = HeldBy(remote)
    pipeline = make_pipeline(db, source)
    remote_room = RemoteRoom(remote)
    for n in range(3):
        remote_room.send("m.room.message", RITA, {"body": f"old {n}"})
    join = remote_room.bobs_join()
    room = Room(db, pipeline, remote_room.room_id)
    await pipeline.path.persist_joined_room(
        remote_room.room_id, "10", join, remote_room.send_join_answer()
    )
    return pipeline, remote_room, room


@pytest_twisted.ensureDeferred
async def test_backfilled_history_is_placed_before_the_join_and_changes_nothing_current(
    db: Database, remote: RemoteServer
) -> None:
    pipeline, remote_room, room = await joined(db, remote)
    extremities = await room.extremities()
    [join_id] = extremities
    join = (await pipeline._events.get_events([join_id]))[join_id]
    room_record = await pipeline._events.get_room(remote_room.room_id)
    assert room_record is not None
    # Where backfill starts: what the join cites.
    backward = await pipeline._events.get_backward_extremities(room_record.room_nid)
    assert backward == set(join.prev_event_ids)
    state_before = {k: e.event_id for k, e in (await room.current_state()).items()}
    position = await pipeline._events.get_max_stream_ordering()
    announced = list(room.announced)
    # The remote's whole history before the join, newest first (create included).
    history = sorted(remote.held.values(), key=lambda e: e.depth, reverse=True)
    results = await pipeline.path.receive_backfill(
        remote_room.room_id, [remote.fresh_copy(e) for e in history], origin=REMOTE
    )
    by_id = {r.event_id: r for r in results}
    assert set(by_id) == {e.event_id for e in history}
    for result in results:
        assert result.outcome is not None and result.outcome.is_accepted, result
        assert result.stream_ordering is not None and result.stream_ordering < 0
    # Nothing current moved, nothing was news.
    assert await room.extremities() == extremities
    now = {k: e.event_id for k, e in (await room.current_state()).items()}
    assert now == state_before
    assert await pipeline._events.get_max_stream_ordering() == position
    assert room.announced == announced
    assert await pipeline._events.get_backward_extremities(room_record.room_nid) == set()
    # The state events held as outliers took their place in the graph.
    create_id = remote_room.state[("m.room.create", "")].event_id
    create = (await pipeline._events.get_events([create_id]))[create_id]
    assert not create.internal.outlier
    # /messages shows the history before the join, in graph order.
    page = await room.reader().messages(
        Requester(BOB, "DEVICE", 0, False),
        remote_room.room_id,
        from_token=None,
        to_token=None,
        direction="b",
        limit=50,
        event_filter=RoomEventFilter(),
    )
    shown = [event["event_id"] for event in page["chunk"]]
    expected = [e.event_id for e in history]
    assert shown[1:] == expected, (shown, expected)


@pytest_twisted.ensureDeferred
async def test_backfill_fetches_the_state_before_its_oldest_event(
    db: Database, remote: RemoteServer
) -> None:
    pipeline, remote_room, room = await joined(db, remote)
    source = pipeline.path._missing
    assert isinstance(source, HeldBy)
    messages = [e for e in remote.held.values() if e.type == "m.room.message"]
    newest_first = sorted(messages, key=lambda e: e.depth, reverse=True)[:2]
    results = await pipeline.path.receive_backfill(
        remote_room.room_id, [remote.fresh_copy(e) for e in newest_first], origin=REMOTE
    )
    assert all(r.outcome is not None and r.outcome.is_accepted for r in results), results
    oldest = newest_first[-1]
    assert source.asked_state == [oldest.prev_event_ids[0]]
    assert source.asked_missing == []
    timeline = await room.reader().messages(
        Requester(BOB, "DEVICE", 0, False),
        remote_room.room_id,
        from_token=None,
        to_token=None,
        direction="b",
        limit=50,
        event_filter=RoomEventFilter(),
    )
    assert [e["event_id"] for e in timeline["chunk"]][1:3] == [e.event_id for e in newest_first]


@pytest_twisted.ensureDeferred
async def test_an_invite_held_out_of_band_takes_its_place_when_backfilled(
    db: Database, remote: RemoteServer
) -> None:
    """Bob was invited (held without state), joined, then the history between the
    invite and the join arrives: the invite gets its place, what cites it builds
    on it."""
    pipeline = make_pipeline(db, HeldBy(remote))
    remote_room = RemoteRoom(remote)
    invite = remote_room.send("m.room.member", RITA, {"membership": "invite"}, BOB)
    await pipeline.path.persist_outlier(
        remote_room.room_id, "10", Event(dict(invite.pdu), invite.room_version, invite.event_id)
    )
    between = remote_room.send("m.room.message", RITA, {"body": "Bob is coming"})
    join = remote_room.bobs_join()
    await pipeline.path.persist_joined_room(
        remote_room.room_id, "10", join, remote_room.send_join_answer()
    )
    results = await pipeline.path.receive_backfill(
        remote_room.room_id, [remote.fresh_copy(between), remote.fresh_copy(invite)], origin=REMOTE
    )
    by_id = {r.event_id: r for r in results}
    for event in (invite, between):
        outcome = by_id[event.event_id].outcome
        assert outcome is not None and outcome.is_accepted, by_id[event.event_id]
    stored = (await pipeline._events.get_events([invite.event_id]))[invite.event_id]
    assert stored.internal.state_group_before is not None
    rows = await db.execute(
        "count", "SELECT COUNT(*) FROM events WHERE event_id = ?", invite.event_id
    )
    assert rows == [(1,)]
    assert await pipeline._events.get_rooms_for_user(BOB) == [remote_room.room_id]
