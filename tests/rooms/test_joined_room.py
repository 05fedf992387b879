"""Joining a room through another server: ``EventPath.persist_joined_room`` with the
state a ``send_join`` answer carries, on both engines.

remote.test creates the room and holds its events; Bob (ours) joins it with a join
event signed by us, as the make_join/send_join dance produces it.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from signedjson.key import generate_signing_key

from homeserver.events.event import Event, StateKey
from homeserver.rooms.builder import EventDraft, RoomPosition, build_local_event
from homeserver.rooms.event_path import InvalidRemoteState, RemoteState
from homeserver.rooms.pipeline import EventPipeline
from homeserver.storage.database import Database
from tests.rooms.test_event_path import (
    LOCAL,
    REMOTE,
    RITA,
    RON,
    RemoteServer,
    Room,
    make_pipeline,
)

BOB = f"@bob:{LOCAL}"
_OUR_KEY = generate_signing_key("local")


class RemoteRoom:
    """A room remote.test created, as its server sees it."""

    def __init__(self, remote: RemoteServer, room_version: str = "10") -> None:
        self.remote = remote
        self.room_id = f"!joined{id(self)}:{REMOTE}"
        hydra = _version(room_version).hydra
        create = build_local_event(
            _version(room_version),
            EventDraft(
                "" if hydra else self.room_id,
                "m.room.create",
                RITA,
                # (A v12 room is its create event: the nonce keeps test rooms apart.)
                {"room_version": room_version, "creator": RITA, "nonce": str(id(self))},
                "",
            ),
            RoomPosition(prev_event_ids=[], max_prev_depth=0, state_before={}),
            server_name=REMOTE,
            signing_key=remote._key,
            origin_server_ts=1_700_000_000_000,
        )
        if create.room_id != self.room_id:
            # v12: the room ID is the create event's own.
            self.room_id = create.room_id
        remote.held[create.event_id] = create
        self.state: dict[StateKey, Event] = {("m.room.create", ""): create}
        self.last = create
        self.send("m.room.member", RITA, {"membership": "join"}, RITA)
        # (v12: creators have unlimited power and may not be listed.)
        self.send("m.room.power_levels", RITA, {"users": {} if hydra else {RITA: 100}}, "")
        self.send("m.room.join_rules", RITA, {"join_rule": "public"}, "")
        self.send("m.room.message", RITA, {"body": "before Bob"})

    def send(
        self, event_type: str, sender: str, content: dict[str, Any], state_key: str | None = None
    ) -> Event:
        event = self.remote.event([self.last], self.state, event_type, sender, content, state_key)
        self.last = event
        if state_key is not None:
            self.state[(event_type, state_key)] = event
        return event

    def bobs_join(self) -> Event:
        """Bob's join, built on the remote's latest event and signed by us."""
        join = build_local_event(
            self.last.room_version,
            EventDraft(self.room_id, "m.room.member", BOB, {"membership": "join"}, BOB),
            RoomPosition(
                prev_event_ids=[self.last.event_id],
                max_prev_depth=self.last.depth,
                state_before={key: e.event_id for key, e in self.state.items()},
            ),
            server_name=LOCAL,
            signing_key=_OUR_KEY,
            origin_server_ts=1_700_000_100_000,
        )
        return Event(dict(join.pdu), join.room_version, join.event_id)

    def send_join_answer(self) -> RemoteState:
        state = [self.remote.fresh_copy(e) for e in self.state.values()]
        return RemoteState(state, self.remote.auth_chain(state))


def _version(identifier: str) -> Any:
    from homeserver.events.room_versions import get_room_version

    return get_room_version(identifier)


@pytest.fixture
def remote() -> RemoteServer:
    return RemoteServer()


@pytest.fixture
def pipeline(db: Database) -> EventPipeline:
    return make_pipeline(db)


@pytest_twisted.ensureDeferred
async def test_a_room_joined_through_another_server_is_held_like_our_own(
    db: Database, remote: RemoteServer, pipeline: EventPipeline
) -> None:
    remote_room = RemoteRoom(remote)
    join = remote_room.bobs_join()
    room = Room(db, pipeline, remote_room.room_id)
    result = await pipeline.path.persist_joined_room(
        remote_room.room_id, "10", join, remote_room.send_join_answer()
    )
    assert result.visible and result.stream_ordering is not None
    assert room.announced == [join.event_id]
    assert await room.extremities() == {join.event_id}
    assert await room.timeline() == [join.event_id]
    current = await room.current_state()
    assert current[("m.room.member", BOB)].event_id == join.event_id
    assert current[("m.room.join_rules", "")].content == {"join_rule": "public"}
    assert await room.members() == sorted([BOB, RITA])
    assert remote_room.room_id in await pipeline._events.get_rooms_for_user(BOB)
    # The state's events are outliers: held, never shown.
    stored_create = await room.events.get_events([current[("m.room.create", "")].event_id])
    assert all(e.internal.outlier for e in stored_create.values())

    # The room goes on: Rita answers (her server now holds the join), Bob replies.
    remote.held[join.event_id] = join
    remote_room.last = join
    remote_room.state[("m.room.member", BOB)] = join
    hello = remote_room.send("m.room.message", RITA, {"body": "welcome Bob"})
    [received] = await pipeline.path.receive(remote_room.room_id, [hello], origin=REMOTE)
    assert received.visible
    sent = await pipeline.send(
        EventDraft(remote_room.room_id, "m.room.message", BOB, {"body": "thanks"})
    )
    assert sent.event.prev_event_ids == [hello.event_id]


@pytest_twisted.ensureDeferred
async def test_joining_twice_stores_the_join_once(
    db: Database, remote: RemoteServer, pipeline: EventPipeline
) -> None:
    remote_room = RemoteRoom(remote)
    join = remote_room.bobs_join()
    await pipeline.path.persist_joined_room(
        remote_room.room_id, "10", join, remote_room.send_join_answer()
    )
    again = await pipeline.path.persist_joined_room(
        remote_room.room_id,
        "10",
        Event(dict(join.pdu), join.room_version, join.event_id),
        remote_room.send_join_answer(),
    )
    assert again.duplicate
    rows = await db.execute(
        "count", "SELECT COUNT(*) FROM events WHERE event_id = ?", join.event_id
    )
    assert rows == [(1,)]


@pytest_twisted.ensureDeferred
async def test_a_state_of_another_room_version_is_refused_and_nothing_stored(
    db: Database, remote: RemoteServer, pipeline: EventPipeline
) -> None:
    remote_room = RemoteRoom(remote, room_version="9")
    join = remote_room.bobs_join()
    with pytest.raises(InvalidRemoteState):
        await pipeline.path.persist_joined_room(
            remote_room.room_id, "10", join, remote_room.send_join_answer()
        )
    assert await pipeline._events.get_room(remote_room.room_id) is None
    assert await db.execute("count", "SELECT COUNT(*) FROM events") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_a_state_with_an_event_failing_the_auth_rules_is_refused(
    db: Database, remote: RemoteServer, pipeline: EventPipeline
) -> None:
    """Ron never joined, yet the state claims he set the topic."""
    remote_room = RemoteRoom(remote)
    remote_room.send("m.room.topic", RON, {"topic": "forged"}, "")
    join = remote_room.bobs_join()
    with pytest.raises(InvalidRemoteState) as refused:
        await pipeline.path.persist_joined_room(
            remote_room.room_id, "10", join, remote_room.send_join_answer()
        )
    assert "m.room.topic" in refused.value.reason
    assert await pipeline._events.get_room(remote_room.room_id) is None


@pytest_twisted.ensureDeferred
async def test_an_incomplete_auth_chain_is_refused(
    db: Database, remote: RemoteServer, pipeline: EventPipeline
) -> None:
    remote_room = RemoteRoom(remote)
    join = remote_room.bobs_join()
    answer = remote_room.send_join_answer()
    create_id = remote_room.state[("m.room.create", "")].event_id
    partial = RemoteState(
        [e for e in answer.state if e.event_id != create_id],
        [e for e in answer.auth_chain if e.event_id != create_id],
    )
    with pytest.raises(InvalidRemoteState):
        await pipeline.path.persist_joined_room(remote_room.room_id, "10", join, partial)
    assert await pipeline._events.get_room(remote_room.room_id) is None


@pytest_twisted.ensureDeferred
async def test_rejoining_a_room_we_left_takes_the_remote_state_as_it_is_now(
    db: Database, remote: RemoteServer, pipeline: EventPipeline
) -> None:
    remote_room = RemoteRoom(remote)
    first_join = remote_room.bobs_join()
    await pipeline.path.persist_joined_room(
        remote_room.room_id, "10", first_join, remote_room.send_join_answer()
    )
    left = await pipeline.send(
        EventDraft(remote_room.room_id, "m.room.member", BOB, {"membership": "leave"}, BOB)
    )
    # Rita's server got the join and the leave, and the room moved on without us.
    remote.learn([first_join, left.event])
    remote_room.last = left.event
    remote_room.state[("m.room.member", BOB)] = left.event
    remote_room.send("m.room.topic", RITA, {"topic": "while Bob was away"}, "")
    rejoin = remote_room.bobs_join()
    room = Room(db, pipeline, remote_room.room_id)
    result = await pipeline.path.persist_joined_room(
        remote_room.room_id, "10", rejoin, remote_room.send_join_answer()
    )
    assert result.visible
    assert await room.extremities() == {rejoin.event_id}
    current = await room.current_state()
    assert current[("m.room.topic", "")].content == {"topic": "while Bob was away"}
    assert current[("m.room.member", BOB)].event_id == rejoin.event_id
    assert await room.members() == sorted([BOB, RITA])
    assert (await room.timeline())[-1] == rejoin.event_id


@pytest_twisted.ensureDeferred
async def test_joining_a_v12_room_checks_the_create_event_the_room_id_names(
    db: Database, remote: RemoteServer, pipeline: EventPipeline
) -> None:
    remote_room = RemoteRoom(remote, room_version="12")
    join = remote_room.bobs_join()
    room = Room(db, pipeline, remote_room.room_id)
    result = await pipeline.path.persist_joined_room(
        remote_room.room_id, "12", join, remote_room.send_join_answer()
    )
    assert result.visible
    assert await room.members() == sorted([BOB, RITA])
    # Another room's create event cannot stand in for it.
    other = RemoteRoom(remote, room_version="12")
    answer = other.send_join_answer()
    forged = RemoteState(
        [e for e in answer.state if e.type == "m.room.create"]
        + [e for e in remote_room.send_join_answer().state if e.type != "m.room.create"],
        answer.auth_chain,
    )
    with pytest.raises(InvalidRemoteState):
        await pipeline.path.persist_joined_room(
            remote_room.room_id, "12", remote_room.bobs_join(), forged
        )
