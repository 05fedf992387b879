"""A room joined with partial state, on both engines: ``persist_joined_room`` with
a ``send_join`` answer whose membership events were left out (``omit_members``),
events received meanwhile, and ``PartialStateCompleter`` completing it with the
full state.

remote.test's Rita created the room and Ron joined it; Bob (ours) joins.

spec: data/api/server-server/joins-v2.yaml (omit_members, members_omitted)
"""

from __future__ import annotations

import pytest
import pytest_twisted
from signedjson.key import generate_signing_key
from twisted.internet import defer, reactor, task

from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.rooms.event_path import RemoteState
from homeserver.rooms.partial_state import MAX_WAIT_S, PartialStateCompleter
from homeserver.rooms.pipeline import EventPipeline
from homeserver.rooms.remote_events import MissingEventSource
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.partial_state import PartialStateRoom, PartialStateStore
from homeserver.storage.state import StateStore
from tests.rooms.test_event_path import LOCAL, REMOTE, RITA, RON, HeldBy, RemoteServer, Room
from tests.rooms.test_joined_room import BOB, RemoteRoom


@pytest.fixture
def remote() -> RemoteServer:
    return RemoteServer()


class Parts:
    def __init__(self, db: Database, missing: MissingEventSource | None = None) -> None:
        self.state = StateStore(db)
        self.events = EventStore(db, self.state)
        self.partial = PartialStateStore(db, state=self.state, events=self.events)
        self.pipeline = EventPipeline(
            server_name=LOCAL,
            signing_key=generate_signing_key("local"),
            clock=Clock(reactor),
            events=self.events,
            state=self.state,
            partial_state=self.partial,
            missing_events=missing,
        )
        self.completer = PartialStateCompleter(
            path=self.pipeline.path, events=self.events, state=self.state, store=self.partial
        )


def without_members(answer: RemoteState) -> RemoteState:
    """What the resident answers to omit_members in a named room: no membership
    events in the state (the auth chain still carries the ones it needs)."""
    kept = [e for e in answer.state if e.type != "m.room.member"]
    chain = {e.event_id: e for e in answer.auth_chain}
    for event in answer.state:
        if event.type == "m.room.member":
            chain.setdefault(event.event_id, event)
    return RemoteState(kept, list(chain.values()))


async def joined_partially(
    db: Database, remote: RemoteServer, missing: MissingEventSource | None = None
) -> tuple[Parts, RemoteRoom, Event]:
    parts = Parts(db, missing)
    remote_room = RemoteRoom(remote)
    remote_room.send("m.room.name", RITA, {"name": "Partial"}, "")
    remote_room.send("m.room.member", RON, {"membership": "join"}, RON)
    join = remote_room.bobs_join()
    full = remote_room.send_join_answer()
    record = PartialStateRoom(
        room_id=remote_room.room_id,
        join_event_id=join.event_id,
        joined_via=REMOTE,
        servers_in_room=frozenset({REMOTE}),
    )
    result = await parts.pipeline.path.persist_joined_room(
        remote_room.room_id, "10", join, without_members(full), partial=record
    )
    assert result.visible
    remote.held[join.event_id] = join
    remote_room.last = join
    remote_room.state[("m.room.member", BOB)] = join
    return parts, remote_room, join


def full_state_before(remote: RemoteServer, remote_room: RemoteRoom, join: Event) -> RemoteState:
    """What ``/state`` at our join answers: the state before it, with its auth chain."""
    state = [
        remote.fresh_copy(e) for e in remote_room.state.values() if e.event_id != join.event_id
    ]
    return RemoteState(state, remote.auth_chain(state))


@pytest_twisted.ensureDeferred
async def test_a_partial_join_holds_only_the_members_it_was_given(
    db: Database, remote: RemoteServer
) -> None:
    parts, remote_room, _join = await joined_partially(db, remote)
    room = Room(db, parts.pipeline, remote_room.room_id)
    assert await room.members() == [BOB]
    assert await parts.partial.is_partial(remote_room.room_id)


@pytest_twisted.ensureDeferred
async def test_a_member_the_partial_state_lacks_can_send(
    db: Database, remote: RemoteServer
) -> None:
    """Ron's membership was left out: his auth event for it stands in."""
    parts, remote_room, _join = await joined_partially(db, remote)
    hello = remote_room.send("m.room.message", RON, {"body": "hi Bob"})
    [received] = await parts.pipeline.path.receive(remote_room.room_id, [hello], origin=REMOTE)
    assert received.visible, received.outcome


@pytest_twisted.ensureDeferred
async def test_history_backfilled_while_partial_keeps_its_own_state_after_completion(
    db: Database, remote: RemoteServer
) -> None:
    """History is fetched while the member list is: its states are the remote's full
    ones, and completing the room's state must not add Ron, who joined after it."""
    parts, remote_room, join = await joined_partially(db, remote, HeldBy(remote))
    room_id = remote_room.room_id
    before_bob = next(e for e in remote.held.values() if e.content.get("body") == "before Bob")
    rons_join = remote_room.state[("m.room.member", RON)]
    history = sorted(
        (e for e in remote.held.values() if e.depth >= before_bob.depth and e is not join),
        key=lambda e: e.depth,
        reverse=True,
    )
    assert history[0].event_id == rons_join.event_id
    results = await parts.pipeline.path.receive_backfill(
        room_id, [remote.fresh_copy(e) for e in history], origin=REMOTE
    )
    assert {r.event_id for r in results if r.visible} == {e.event_id for e in history}

    record = await parts.partial.get(room_id)
    assert record is not None
    await parts.completer.complete(record, full_state_before(remote, remote_room, join))

    state = StateStore(db)
    groups = await parts.events.get_state_groups_after([before_bob.event_id, rons_join.event_id])
    after_old_message = await state.get_state_ids(groups[before_bob.event_id])
    assert ("m.room.member", RITA) in after_old_message
    assert ("m.room.member", RON) not in after_old_message
    assert ("m.room.name", "") not in after_old_message
    after_rons_join = await state.get_state_ids(groups[rons_join.event_id])
    assert after_rons_join[("m.room.member", RON)] == rons_join.event_id
    # The live state got what it lacked.
    assert await Room(db, parts.pipeline, room_id).members() == sorted([BOB, RITA, RON])


@pytest_twisted.ensureDeferred
async def test_completion_adds_every_member_and_wakes_the_waiting_member_lists(
    db: Database, remote: RemoteServer
) -> None:
    parts, remote_room, join = await joined_partially(db, remote)
    room_id = remote_room.room_id
    hello = remote_room.send("m.room.message", RON, {"body": "before completion"})
    await parts.pipeline.path.receive(room_id, [hello], origin=REMOTE)
    waiting = defer.ensureDeferred(parts.completer.wait_for_full_state(room_id))
    assert not waiting.called
    record = await parts.partial.get(room_id)
    assert record is not None

    added = await parts.completer.complete(record, full_state_before(remote, remote_room, join))

    assert sorted(added) == sorted([RITA, RON])
    assert waiting.called
    room = Room(db, parts.pipeline, room_id)
    assert await room.members() == sorted([BOB, RITA, RON])
    current = await room.current_state()
    assert current[("m.room.member", RON)].membership == "join"
    assert not await parts.partial.is_partial(room_id)
    # The state before the message received while partial is whole now too.
    groups = await parts.events.get_state_groups_after([hello.event_id])
    after_hello = await StateStore(db).get_state_ids(groups[hello.event_id])
    assert ("m.room.member", RITA) in after_hello and ("m.room.member", RON) in after_hello


@pytest_twisted.ensureDeferred
async def test_a_member_list_request_stops_waiting_when_the_fetch_is_slow(
    db: Database, remote: RemoteServer
) -> None:
    """Every server the fetch asks may be down: the request is answered from the
    partial state after MAX_WAIT_S rather than never."""
    parts, remote_room, _join = await joined_partially(db, remote)
    clock = task.Clock()
    completer = PartialStateCompleter(
        path=parts.pipeline.path,
        events=parts.events,
        state=parts.state,
        store=parts.partial,
        reactor=clock,
    )
    waiting = defer.ensureDeferred(completer.wait_for_full_state(remote_room.room_id))
    await parts.partial.get(remote_room.room_id)  # let the question be answered
    for _ in range(20):
        if not waiting.called:
            await task.deferLater(reactor, 0.01, lambda: None)
    assert not waiting.called
    clock.advance(MAX_WAIT_S)
    await waiting
    assert await parts.partial.is_partial(remote_room.room_id)
