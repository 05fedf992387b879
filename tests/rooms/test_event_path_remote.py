"""The event path filling gaps from another server: /get_missing_events first, then the
state before a prev event that cannot be had (/state_ids), on both engines.

The remote server and the source answering for it are the ones of
``test_event_path``; events pass the format, signature and hash checks as received
PDUs do.
"""

from __future__ import annotations

import pytest
import pytest_twisted

from homeserver.storage.database import Database
from tests.rooms.test_event_path import (
    REMOTE,
    RITA,
    HeldBy,
    RemoteServer,
    make_pipeline,
    room_with_rita,
)


@pytest.fixture
def remote() -> RemoteServer:
    return RemoteServer()


@pytest_twisted.ensureDeferred
async def test_a_gap_too_big_for_get_missing_events_is_filled_with_the_remote_state(
    db: Database, remote: RemoteServer
) -> None:
    source = HeldBy(remote)
    room = await room_with_rita(db, make_pipeline(db, source), remote)
    state = await room.current_state()
    ours = await room.last()
    prev = [ours]
    chain = []
    for n in range(25):
        chain.append(remote.event(prev, state, "m.room.message", RITA, {"body": str(n)}))
        prev = [chain[-1]]
    results = await room.pipeline.path.receive(room.room_id, [chain[-1]], origin=REMOTE)
    # 20 events came from /get_missing_events; the one they cite is the gap.
    got = chain[-21:]
    gap = chain[-22]
    assert source.asked_state == [gap.event_id]
    assert sorted(r.event_id for r in results if r.visible) == sorted(e.event_id for e in got)
    assert (await room.timeline())[-21:] == [e.event_id for e in got]
    assert gap.event_id not in await room.timeline()
    stored = (await room.events.get_events([gap.event_id]))[gap.event_id]
    assert stored.internal.outlier
    room_nid = (await room.events.get_room(room.room_id)).room_nid  # type: ignore[union-attr]
    assert await room.events.get_backward_extremities(room_nid) == {gap.event_id}
    # Nothing we hold cites our old extremity: it stays one, and our next event
    # merges both ends.
    assert await room.extremities() == {ours.event_id, chain[-1].event_id}
    reply = await room.send_local("m.room.message", {"body": "welcome back"})
    assert set(reply.prev_event_ids) == {ours.event_id, chain[-1].event_id}


@pytest_twisted.ensureDeferred
async def test_state_changed_inside_a_gap_reaches_the_current_state(
    db: Database, remote: RemoteServer
) -> None:
    """Rita renames herself in events we never get: the state after the gap, as her
    server reports it, becomes the room's, without the rename showing as an event."""
    source = HeldBy(remote, missing_events=False)
    room = await room_with_rita(db, make_pipeline(db, source), remote)
    state = await room.current_state()
    rename = remote.event(
        [await room.last()],
        state,
        "m.room.member",
        RITA,
        {"membership": "join", "displayname": "Rita R."},
        RITA,
    )
    state = {**state, ("m.room.member", RITA): rename}
    hidden = remote.event([rename], state, "m.room.message", RITA, {"body": "unseen"})
    latest = remote.event([hidden], state, "m.room.message", RITA, {"body": "seen"})
    results = await room.pipeline.path.receive(room.room_id, [latest], origin=REMOTE)
    [result] = [r for r in results if r.event_id == latest.event_id]
    assert result.visible, result
    assert [r.event_id for r in results if r.visible] == [latest.event_id]
    assert source.asked_state == [hidden.event_id]
    current = await room.current_state()
    assert current[("m.room.member", RITA)].event_id == rename.event_id
    assert current[("m.room.member", RITA)].content["displayname"] == "Rita R."
    timeline = await room.timeline()
    assert latest.event_id in timeline
    assert rename.event_id not in timeline and hidden.event_id not in timeline
    assert RITA in await room.members()


@pytest_twisted.ensureDeferred
async def test_an_outlier_arriving_with_its_place_in_the_graph_joins_the_timeline(
    db: Database, remote: RemoteServer
) -> None:
    source = HeldBy(remote, missing_events=False)
    room = await room_with_rita(db, make_pipeline(db, source), remote)
    state = await room.current_state()
    first = remote.event([await room.last()], state, "m.room.message", RITA, {"body": "1"})
    second = remote.event([first], state, "m.room.message", RITA, {"body": "2"})
    third = remote.event([second], state, "m.room.message", RITA, {"body": "3"})
    await room.pipeline.path.receive(room.room_id, [third], origin=REMOTE)
    assert (await room.events.get_events([second.event_id]))[second.event_id].internal.outlier
    # The gap's events arrive after all (a late delivery).
    results = await room.pipeline.path.receive(
        room.room_id, [remote.fresh_copy(first), remote.fresh_copy(second)], origin=REMOTE
    )
    assert all(r.visible and not r.duplicate for r in results), results
    # They close the gap: what already cites them stays the room's one end.
    assert await room.extremities() == {third.event_id}
    room_nid = (await room.events.get_room(room.room_id)).room_nid  # type: ignore[union-attr]
    assert await room.events.get_backward_extremities(room_nid) == set()
    stored = (await room.events.get_events([second.event_id]))[second.event_id]
    assert not stored.internal.outlier and stored.internal.stream_ordering is not None
    timeline = await room.timeline()
    assert first.event_id in timeline and second.event_id in timeline
    rows = await db.execute(
        "count", "SELECT COUNT(*) FROM events WHERE event_id = ?", second.event_id
    )
    assert rows == [(1,)]


@pytest_twisted.ensureDeferred
async def test_a_gap_nobody_can_fill_refuses_the_event_and_stores_nothing(
    db: Database, remote: RemoteServer
) -> None:
    room = await room_with_rita(db, make_pipeline(db), remote)
    state = await room.current_state()
    first = remote.event([await room.last()], state, "m.room.message", RITA, {"body": "1"})
    second = remote.event([first], state, "m.room.message", RITA, {"body": "2"})
    before = await db.execute("count", "SELECT COUNT(*) FROM events")
    [refused] = await room.pipeline.path.receive(room.room_id, [second], origin=REMOTE)
    assert not refused.stored and refused.error is not None
    assert await db.execute("count", "SELECT COUNT(*) FROM events") == before
