"""The one event path with events that look remote, on both engines.

Events from "remote.test" are built and signed with that server's own key, pass the
format, signature and hash checks (steps 1-3) as a received PDU would, and are then
handed to the path, exactly as federation will hand them.  What clients can see is
read back through the timeline store, the current state and the membership index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

import pytest
import pytest_twisted
from signedjson.key import generate_signing_key, get_verify_key
from twisted.internet import defer, reactor

from homeserver.auth.tokens import Requester
from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.events.auth import AuthError
from homeserver.events.event import Event, StateKey
from homeserver.events.receipt import check_pdu_format_and_signatures
from homeserver.events.signing import VerifyKeyWithExpiry
from homeserver.filtering.model import RoomEventFilter
from homeserver.rooms.builder import EventDraft, RoomPosition, build_local_event
from homeserver.rooms.event_path import EventsUnavailable, MissingEventSource, RemoteState
from homeserver.rooms.pipeline import EventPipeline
from homeserver.rooms.reading import RoomReader
from homeserver.rooms.serialize import EventSerializer
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.visibility import HistoryVisibilityFilter
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore

LOCAL = "example.org"
REMOTE = "remote.test"
ALICE = f"@alice:{LOCAL}"
RITA = f"@rita:{REMOTE}"
RON = f"@ron:{REMOTE}"


class RemoteServer:
    """Another server in the room: builds events on the graph as it sees it, signs
    them with its own key, and can answer for the events it holds."""

    def __init__(self, name: str = REMOTE) -> None:
        self.name = name
        self._key = generate_signing_key("r1")
        self._ts = 1_700_000_000_000
        self.held: dict[str, Event] = {}
        #: The state before each event it built, as its /state_ids would answer.
        self.state_before: dict[str, dict[StateKey, Event]] = {}

    def event(
        self,
        prev: Sequence[Event],
        state: dict[StateKey, Event],
        event_type: str,
        sender: str,
        content: dict[str, Any],
        state_key: str | None = None,
    ) -> Event:
        """A PDU from this server after ``prev``, with the state before it ``state``,
        as this server would receive it back: through steps 1-3 of the checks."""
        self._ts += 1
        room_version = prev[0].room_version
        built = build_local_event(
            room_version,
            EventDraft(prev[0].room_id, event_type, sender, content, state_key=state_key),
            RoomPosition(
                prev_event_ids=[e.event_id for e in prev],
                max_prev_depth=max(e.depth for e in prev),
                state_before={key: e.event_id for key, e in state.items()},
            ),
            server_name=self.name,
            signing_key=self._key,
            origin_server_ts=self._ts,
        )
        keys = {self.name: {"ed25519:r1": VerifyKeyWithExpiry(get_verify_key(self._key))}}
        received = check_pdu_format_and_signatures(dict(built.pdu), room_version, keys)
        assert not received.redacted_for_bad_hash
        self.held[received.event.event_id] = received.event
        self.state_before[received.event.event_id] = dict(state)
        return received.event

    def clock_ahead(self) -> None:
        """This server's clock runs an hour ahead of ours from now on."""
        self._ts = Clock(reactor).time_msec() + 3_600_000

    def auth_chain(self, events: Sequence[Event]) -> list[Event]:
        """The auth chain of ``events`` among what this server holds (its own events
        and those it was shown: :meth:`learn`)."""
        chain: dict[str, Event] = {}
        pending = [a for e in events for a in e.auth_event_ids]
        while pending:
            event_id = pending.pop()
            if event_id in chain or event_id not in self.held:
                continue
            chain[event_id] = self.fresh_copy(self.held[event_id])
            pending.extend(chain[event_id].auth_event_ids)
        return list(chain.values())

    def learn(self, events: Sequence[Event]) -> None:
        """Hold these events (of the other server) too, as a resident server would."""
        for event in events:
            self.held.setdefault(event.event_id, event)

    def fresh_copy(self, event: Event) -> Event:
        """The same PDU again, as a second delivery would bring it (another server's
        event is passed on as received, with fresh metadata)."""
        if not event.sender.endswith(":" + self.name):
            return Event(dict(event.pdu), event.room_version, event.event_id)
        keys = {self.name: {"ed25519:r1": VerifyKeyWithExpiry(get_verify_key(self._key))}}
        return check_pdu_format_and_signatures(dict(event.pdu), event.room_version, keys).event


class HeldBy:
    """A :class:`MissingEventSource` answering from what a remote server holds (what
    federation's ``/event``, ``/get_missing_events`` and ``/state_ids`` do over HTTP)."""

    def __init__(self, remote: RemoteServer, *, missing_events: bool = True) -> None:
        self._remote = remote
        self._missing_events = missing_events
        self.asked: list[set[str]] = []
        self.asked_missing: list[tuple[list[str], list[str]]] = []
        self.asked_state: list[str] = []
        self.origins: list[str | None] = []

    async def fetch_events(
        self, room_id: str, event_ids: Collection[str], *, origin: str | None = None
    ) -> Sequence[Event]:
        self.asked.append(set(event_ids))
        self.origins.append(origin)
        found = [
            self._remote.fresh_copy(self._remote.held[e])
            for e in event_ids
            if e in self._remote.held
        ]
        if not found:
            raise EventsUnavailable(event_ids)
        return found

    async def fetch_missing_events(
        self,
        room_id: str,
        *,
        earliest: Sequence[str],
        latest: Sequence[str],
        limit: int,
        min_depth: int,
        origin: str | None = None,
    ) -> Sequence[Event]:
        """The events before ``latest`` back to ``earliest`` that it holds, newest
        first, as /get_missing_events walks them."""
        self.asked_missing.append((list(earliest), list(latest)))
        self.origins.append(origin)
        if not self._missing_events:
            return []
        found: list[Event] = []
        seen = set(earliest) | set(latest)
        frontier = [
            p for e in latest if e in self._remote.held for p in self._remote.held[e].prev_event_ids
        ]
        while frontier and len(found) < limit:
            event_id = frontier.pop(0)
            if event_id in seen or event_id not in self._remote.held:
                continue
            seen.add(event_id)
            event = self._remote.held[event_id]
            if event.depth < min_depth:
                continue
            found.append(self._remote.fresh_copy(event))
            frontier.extend(event.prev_event_ids)
        return found

    async def fetch_state_before(
        self, room_id: str, event_id: str, *, origin: str | None = None
    ) -> RemoteState:
        self.asked_state.append(event_id)
        self.origins.append(origin)
        if event_id not in self._remote.state_before:
            raise EventsUnavailable([event_id])
        state = [self._remote.fresh_copy(e) for e in self._remote.state_before[event_id].values()]
        return RemoteState(state, self._remote.auth_chain(state))


class Room:
    """A room on our server that remote.test's users are in, and ways to look at it."""

    def __init__(self, db: Database, pipeline: EventPipeline, room_id: str) -> None:
        self.db = db
        self.pipeline = pipeline
        self.room_id = room_id
        self.announced: list[str] = []
        pipeline.on_new_event.append(lambda event, position: self.announced.append(event.event_id))

    @property
    def events(self) -> EventStore:
        return self.pipeline._events

    async def current_state(self) -> dict[StateKey, Event]:
        room = await self.events.get_room(self.room_id)
        assert room is not None and room.current_state_group is not None
        ids = await StateStore(self.db).get_state_ids(room.current_state_group)
        loaded = await self.events.get_events(list(ids.values()))
        return {key: loaded[event_id] for key, event_id in ids.items()}

    async def extremities(self) -> set[str]:
        room = await self.events.get_room(self.room_id)
        assert room is not None
        return set(await self.events.get_forward_extremities(room.room_nid))

    async def timeline(self) -> list[str]:
        """What a client sees, oldest first."""
        room = await self.events.get_room(self.room_id)
        assert room is not None
        timeline = TimelineStore(self.db, self.events)
        events = await timeline.get_room_events(
            room.room_nid, after=None, up_to=None, direction="b", limit=1000
        )
        return [e.event_id for e in reversed(events)]

    def reader(self) -> RoomReader:
        """What serves clients their rooms: /messages, /context, /event."""
        timeline = TimelineStore(self.db, self.events)
        state = RoomStateReader(self.events, StateStore(self.db), timeline)

        async def no_one_ignored(user_id: str) -> frozenset[str]:
            return frozenset()

        return RoomReader(
            events=self.events,
            timeline=timeline,
            state=state,
            visibility=HistoryVisibilityFilter(self.events, state),
            serializer=EventSerializer(Clock(reactor), self.events, timeline),
            ignored_users=no_one_ignored,
        )

    async def members(self) -> list[str]:
        room = await self.events.get_room(self.room_id)
        assert room is not None
        return await self.events.get_room_members(room.room_nid)

    async def last(self) -> Event:
        [event_id] = await self.extremities()
        return (await self.events.get_events([event_id]))[event_id]

    async def send_local(
        self, event_type: str, content: dict[str, Any], state_key: str | None = None
    ) -> Event:
        sent = await self.pipeline.send(
            EventDraft(self.room_id, event_type, ALICE, content, state_key=state_key)
        )
        return sent.event


def make_pipeline(db: Database, missing: MissingEventSource | None = None) -> EventPipeline:
    state = StateStore(db)
    return EventPipeline(
        server_name=LOCAL,
        signing_key=generate_signing_key("local"),
        clock=Clock(reactor),
        events=EventStore(db, state),
        state=state,
        missing_events=missing,
    )


async def room_with_rita(db: Database, pipeline: EventPipeline, remote: RemoteServer) -> Room:
    """Alice's public room (PL: Alice 100, bans at 50), joined by Rita over federation."""
    [created, *_] = await pipeline.create_room("10", ALICE, {})
    room = Room(db, pipeline, created.event.room_id)
    await room.send_local("m.room.member", {"membership": "join"}, ALICE)
    await room.send_local("m.room.power_levels", {"users": {ALICE: 100}}, "")
    await room.send_local("m.room.join_rules", {"join_rule": "public"}, "")
    join = remote.event(
        [await room.last()],
        await room.current_state(),
        "m.room.member",
        RITA,
        {"membership": "join"},
        RITA,
    )
    [result] = await pipeline.path.receive(room.room_id, [join])
    assert result.outcome is not None and result.outcome.is_accepted, result
    return room


@pytest.fixture
def remote() -> RemoteServer:
    return RemoteServer()


@pytest_twisted.async_yield_fixture
async def room(db: Database, remote: RemoteServer) -> AsyncIterator[Room]:
    yield await room_with_rita(db, make_pipeline(db), remote)


def topic_key() -> StateKey:
    return ("m.room.topic", "")


@pytest_twisted.ensureDeferred
async def test_remote_join_and_message_are_visible_like_local_ones(
    room: Room, remote: RemoteServer
) -> None:
    assert RITA in await room.members()
    message = remote.event(
        [await room.last()], await room.current_state(), "m.room.message", RITA, {"body": "hi"}
    )
    [result] = await room.pipeline.path.receive(room.room_id, [message])
    assert result.visible and result.stream_ordering is not None
    assert (await room.timeline())[-1] == message.event_id
    assert room.announced[-1] == message.event_id
    assert await room.extremities() == {message.event_id}
    # Our next event builds on it.
    reply = await room.send_local("m.room.message", {"body": "hello Rita"})
    assert reply.prev_event_ids == [message.event_id]


@pytest_twisted.ensureDeferred
async def test_a_branch_its_sender_may_not_make_is_rejected_not_forked(
    room: Room, remote: RemoteServer
) -> None:
    """Alice and Rita change the topic at the same time, but Rita may not: the room
    does not fork and the state stays Alice's."""
    base = await room.last()
    state_at_base = await room.current_state()
    ours = await room.send_local("m.room.topic", {"topic": "Alice's"}, "")
    assert ours.prev_event_ids == [base.event_id]
    theirs = remote.event([base], state_at_base, "m.room.topic", RITA, {"topic": "Rita's"}, "")
    [result] = await room.pipeline.path.receive(room.room_id, [theirs])
    # Rita has power level 0 and topic needs 50: rejected against the state before it.
    assert result.outcome is not None and result.outcome.is_rejected
    assert await room.extremities() == {ours.event_id}
    assert (await room.current_state())[topic_key()].event_id == ours.event_id
    assert theirs.event_id not in await room.timeline()


@pytest_twisted.ensureDeferred
async def test_forked_topic_changes_resolve_and_merge(db: Database, remote: RemoteServer) -> None:
    pipeline = make_pipeline(db)
    room = await room_with_rita(db, pipeline, remote)
    remote.clock_ahead()
    # Rita becomes a moderator, so both branches are allowed.
    await room.send_local("m.room.power_levels", {"users": {ALICE: 100, RITA: 50}}, "")
    base = await room.last()
    state_at_base = await room.current_state()
    ours = await room.send_local("m.room.topic", {"topic": "Alice's"}, "")
    theirs = remote.event([base], state_at_base, "m.room.topic", RITA, {"topic": "Rita's"}, "")
    [result] = await pipeline.path.receive(room.room_id, [theirs])
    assert result.visible
    assert await room.extremities() == {ours.event_id, theirs.event_id}
    # State resolution v2: both topics sit at the same place on the power-levels
    # mainline, so they are applied oldest first (origin_server_ts) and the newer one,
    # Rita's (her server's clock runs ahead), becomes the room's topic.
    assert theirs.origin_server_ts > ours.origin_server_ts
    resolved = (await room.current_state())[topic_key()].event_id
    assert resolved == theirs.event_id
    # Rita's server merges the branches.
    merge_state = dict(state_at_base)
    merge_state[topic_key()] = (await room.current_state())[topic_key()]
    merge = remote.event([ours, theirs], merge_state, "m.room.message", RITA, {"body": "merged"})
    [merged] = await pipeline.path.receive(room.room_id, [merge])
    assert merged.visible
    assert await room.extremities() == {merge.event_id}
    assert (await room.current_state())[topic_key()].event_id == resolved
    assert (await room.timeline())[-3:] == [ours.event_id, theirs.event_id, merge.event_id]


@pytest_twisted.ensureDeferred
async def test_events_arriving_in_reverse_order_in_one_batch_are_all_accepted(
    room: Room, remote: RemoteServer
) -> None:
    prev = [await room.last()]
    state = await room.current_state()
    chain = []
    for n in range(5):
        event = remote.event(prev, state, "m.room.message", RITA, {"body": str(n)})
        chain.append(event)
        prev = [event]
    results = await room.pipeline.path.receive(room.room_id, list(reversed(chain)))
    assert all(r.visible for r in results)
    by_id = {r.event_id: r.stream_ordering or 0 for r in results}
    assert [by_id[e.event_id] for e in chain] == sorted(by_id.values())
    assert (await room.timeline())[-5:] == [e.event_id for e in chain]
    assert await room.extremities() == {chain[-1].event_id}


@pytest_twisted.ensureDeferred
async def test_an_event_before_its_parent_is_refused_cleanly_then_accepted(
    room: Room, remote: RemoteServer, db: Database
) -> None:
    state = await room.current_state()
    parent = remote.event([await room.last()], state, "m.room.message", RITA, {"body": "1"})
    child = remote.event([parent], state, "m.room.message", RITA, {"body": "2"})
    before = await db.execute("count", "SELECT COUNT(*) FROM events")
    [refused] = await room.pipeline.path.receive(room.room_id, [child])
    assert not refused.stored and refused.error is not None and parent.event_id in refused.error
    assert await db.execute("count", "SELECT COUNT(*) FROM events") == before
    await room.pipeline.path.receive(room.room_id, [parent])
    [accepted] = await room.pipeline.path.receive(room.room_id, [remote.fresh_copy(child)])
    assert accepted.visible
    assert (await room.timeline())[-2:] == [parent.event_id, child.event_id]


@pytest_twisted.ensureDeferred
async def test_missing_prev_events_are_fetched_through_the_source(
    db: Database, remote: RemoteServer
) -> None:
    source = HeldBy(remote)
    pipeline = make_pipeline(db, source)
    room = await room_with_rita(db, pipeline, remote)
    state = await room.current_state()
    ours = await room.last()
    prev = [ours]
    chain = []
    for n in range(3):
        chain.append(remote.event(prev, state, "m.room.message", RITA, {"body": str(n)}))
        prev = [chain[-1]]
    results = await pipeline.path.receive(room.room_id, [chain[-1]], origin=REMOTE)
    # One /get_missing_events from our extremity to the event citing the gap.
    assert source.asked_missing == [([ours.event_id], [chain[-1].event_id])]
    assert source.asked == [] and source.asked_state == []
    assert set(source.origins) == {REMOTE}
    assert sorted(r.event_id for r in results if r.visible) == sorted(e.event_id for e in chain)
    assert (await room.timeline())[-3:] == [e.event_id for e in chain]


@pytest_twisted.ensureDeferred
async def test_a_banned_users_late_event_is_soft_failed(room: Room, remote: RemoteServer) -> None:
    """Rita's server keeps citing the graph from before her ban: her message passes
    against the state before it but not against the current state."""
    before_ban = await room.last()
    state_before_ban = await room.current_state()
    await room.send_local("m.room.member", {"membership": "ban"}, RITA)
    late = remote.event(
        [before_ban], state_before_ban, "m.room.message", RITA, {"body": "still here"}
    )
    announced = len(room.announced)
    [result] = await room.pipeline.path.receive(room.room_id, [late])
    assert result.outcome is not None and result.outcome.is_soft_failed
    assert result.stored and not result.visible
    assert late.event_id not in await room.timeline()
    assert late.event_id not in await room.extremities()
    assert len(room.announced) == announced
    stored = (await EventStore(room.db, StateStore(room.db)).get_events([late.event_id]))[
        late.event_id
    ]
    assert stored.internal.soft_failed
    assert RITA not in await room.members()
    # Nothing a client asks shows it.
    reader, alice = room.reader(), Requester(ALICE, "DEVICE", 0, False)
    page = await reader.messages(
        alice,
        room.room_id,
        from_token=None,
        to_token=None,
        direction="b",
        limit=50,
        event_filter=RoomEventFilter(),
    )
    assert late.event_id not in {event["event_id"] for event in page["chunk"]}
    for ask in (
        reader.get_event(alice, room.room_id, late.event_id),
        reader.context(alice, room.room_id, late.event_id, limit=5, event_filter=RoomEventFilter()),
    ):
        with pytest.raises(MatrixError) as refused:
            await ask
        assert refused.value.status == 404


@pytest_twisted.ensureDeferred
async def test_a_rejected_event_never_affects_state(room: Room, remote: RemoteServer) -> None:
    """Rita (power 0) makes herself admin: rejected.  An event built on it gets the
    state from before it, and the room's state never contains it."""
    state = await room.current_state()
    power_grab = remote.event(
        [await room.last()], state, "m.room.power_levels", RITA, {"users": {RITA: 100}}, ""
    )
    # Her server then sets the topic as if it had worked.
    grabbed_state = {**state, ("m.room.power_levels", ""): power_grab}
    topic = remote.event([power_grab], grabbed_state, "m.room.topic", RITA, {"topic": "mine"}, "")
    results = {
        r.event_id: r for r in await room.pipeline.path.receive(room.room_id, [power_grab, topic])
    }
    for event in (power_grab, topic):
        outcome = results[event.event_id].outcome
        assert outcome is not None and outcome.is_rejected
    current = await room.current_state()
    assert current[("m.room.power_levels", "")].event_id != power_grab.event_id
    assert topic_key() not in current
    timeline = await room.timeline()
    assert power_grab.event_id not in timeline and topic.event_id not in timeline
    assert await room.extremities() == {state[("m.room.member", RITA)].event_id}
    # A message citing the rejected event: its state before is the state before the
    # power grab, where Rita may talk.
    after_rejected = remote.event([power_grab], state, "m.room.message", RITA, {"body": "ok"})
    [result] = await room.pipeline.path.receive(room.room_id, [after_rejected])
    assert result.visible


@pytest_twisted.ensureDeferred
async def test_an_event_from_someone_who_never_joined_is_rejected(
    room: Room, remote: RemoteServer
) -> None:
    message = remote.event(
        [await room.last()], await room.current_state(), "m.room.message", RON, {"body": "hi"}
    )
    [result] = await room.pipeline.path.receive(room.room_id, [message])
    assert result.outcome is not None and result.outcome.is_rejected
    assert message.event_id not in await room.timeline()


@pytest_twisted.ensureDeferred
async def test_the_same_event_twice_is_stored_and_announced_once(
    room: Room, remote: RemoteServer, db: Database
) -> None:
    message = remote.event(
        [await room.last()], await room.current_state(), "m.room.message", RITA, {"body": "once"}
    )
    [first] = await room.pipeline.path.receive(room.room_id, [message, remote.fresh_copy(message)])
    [again] = await room.pipeline.path.receive(room.room_id, [remote.fresh_copy(message)])
    assert first.visible and again.duplicate and not again.visible
    assert room.announced.count(message.event_id) == 1
    rows = await db.execute(
        "count", "SELECT COUNT(*) FROM events WHERE event_id = ?", message.event_id
    )
    assert rows == [(1,)]


@pytest_twisted.ensureDeferred
async def test_a_local_event_failing_against_the_current_state_stores_nothing(
    room: Room, db: Database
) -> None:
    await room.send_local("m.room.member", {"membership": "ban"}, RITA)
    before = await db.execute("count", "SELECT COUNT(*) FROM events")
    with pytest.raises(AuthError):
        await room.pipeline.send(EventDraft(room.room_id, "m.room.message", RITA, {"body": "x"}))
    assert await db.execute("count", "SELECT COUNT(*) FROM events") == before


@pytest_twisted.ensureDeferred
async def test_batches_in_several_rooms_at_once_all_land(
    db: Database, remote: RemoteServer
) -> None:
    pipeline = make_pipeline(db)
    rooms = [await room_with_rita(db, pipeline, remote) for _ in range(4)]
    messages = []
    for room in rooms:
        messages.append(
            remote.event(
                [await room.last()],
                await room.current_state(),
                "m.room.message",
                RITA,
                {"body": room.room_id},
            )
        )
    results = await defer.gatherResults(
        [
            defer.ensureDeferred(pipeline.path.receive(room.room_id, [message]))
            for room, message in zip(rooms, messages, strict=True)
        ]
    )
    assert all(r.visible for [r] in results)
    for room, message in zip(rooms, messages, strict=True):
        assert (await room.timeline())[-1] == message.event_id
