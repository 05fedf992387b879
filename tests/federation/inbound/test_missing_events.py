"""Fetching what a room's graph lacks from the server that has it: two servers' stores
(each on its own database of the engine under test) joined by a loopback network,
each with the real event path, transactions and read handlers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest_twisted
from twisted.internet import defer, reactor, task

from federation.acl import ServerAcl
from federation.inbound.edus import EduRegistry
from federation.inbound.event_reads import EventReadHandler
from federation.inbound.missing_events import (
    CHECKS_BETWEEN_YIELDS,
    FederationMissingEventSource,
)
from federation.inbound.pdu_checks import PduChecker
from federation.inbound.transactions import TransactionHandler
from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.events.room_versions import get_room_version
from homeserver.reactor import installed_reactor
from homeserver.rooms.builder import EventDraft, RoomPosition, build_local_event
from homeserver.rooms.pipeline import EventPipeline
from homeserver.rooms.remote_events import EventsUnavailable, RemoteState
from homeserver.storage.database import Database
from homeserver.storage.event_graph import EventGraphStore
from homeserver.storage.events import EventStore
from homeserver.storage.federation_inbound import LocalResidencyStore, ReceivedTransactionStore
from homeserver.storage.migrations import prepare_database
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore
from tests.federation.inbound.loopback import LoopbackFederation
from tests.federation.inbound.signing import TestKeyring, TestServer
from tests.support.postgres import temporary_database

LOCAL = "example.org"
REMOTE = "remote.test"
ALICE = f"@alice:{LOCAL}"
RITA = f"@rita:{REMOTE}"


@pytest_twisted.async_yield_fixture
async def remote_db(database_config: dict[str, Any], tmp_path: Path) -> AsyncIterator[Database]:
    """A second database of the same engine: the other server's."""
    with ExitStack() as stack:
        if database_config["name"] == "sqlite3":
            name, args = "sqlite3", {"database": str(tmp_path / "remote.db")}
        else:
            name, args = "psycopg2", stack.enter_context(temporary_database())
        database = Database.connect(name, args, reactor=installed_reactor(), cp_min=1, cp_max=4)
        await prepare_database(database)
        yield database
        database.close()


@attrs.define
class Server:
    identity: TestServer
    db: Database
    events: EventStore
    state: StateStore
    pipeline: EventPipeline
    reads: EventReadHandler
    transactions: TransactionHandler
    source: FederationMissingEventSource | None

    async def send(self, room_id: str, sender: str, body: str) -> Event:
        draft = EventDraft(room_id, "m.room.message", sender, {"msgtype": "m.text", "body": body})
        return (await self.pipeline.send(draft)).event

    async def timeline(self, room_id: str) -> list[str]:
        room = await self.events.get_room(room_id)
        assert room is not None
        events = await TimelineStore(self.db, self.events).get_room_events(
            room.room_nid, after=None, up_to=None, direction="b", limit=1000
        )
        return [e.content.get("body", e.type) for e in reversed(events)]


def make_server(
    identity: TestServer, db: Database, keyring: TestKeyring, client: LoopbackFederation | None
) -> Server:
    state = StateStore(db)
    events = EventStore(db, state)
    checker = PduChecker(keyring)
    graph = EventGraphStore(db, state)
    source = (
        None
        if client is None
        else FederationMissingEventSource(
            server_name=identity.name, client=client, checker=checker, rooms=graph, events=events
        )
    )
    pipeline = EventPipeline(
        server_name=identity.name,
        signing_key=identity.key,
        clock=Clock(reactor),
        events=events,
        state=state,
        missing_events=source,
    )
    acl = ServerAcl(events=events, state=state)
    reads = EventReadHandler(
        server_name=identity.name,
        events=events,
        state=state,
        graph=graph,
        acl=acl,
        clock=Clock(reactor),
    )
    transactions = TransactionHandler(
        store=ReceivedTransactionStore(db),
        rooms=events,
        residency=LocalResidencyStore(db, identity.name),
        checker=checker,
        acl=acl,
        path=pipeline.path,
        edus=EduRegistry(),
        clock=Clock(reactor),
    )
    return Server(identity, db, events, state, pipeline, reads, transactions, source)


def transaction(origin: str, events: list[Event]) -> dict[str, Any]:
    return {
        "origin": origin,
        "origin_server_ts": 1,
        "pdus": [json.loads(json.dumps(e.pdu)) for e in events],
    }


@attrs.define
class Pair:
    local: Server
    remote: Server
    client: LoopbackFederation
    room_id: str


@pytest_twisted.async_yield_fixture
async def pair(db: Database, remote_db: Database) -> AsyncIterator[Pair]:
    """Rita's public room on remote.test, which Alice of example.org has joined."""
    local_id, remote_id = TestServer(LOCAL), TestServer(REMOTE)
    remote = make_server(remote_id, remote_db, TestKeyring(local_id), None)
    client = LoopbackFederation(LOCAL, {REMOTE: remote.reads})
    local = make_server(local_id, db, TestKeyring(remote_id), client)

    [created] = await remote.pipeline.create_room("10", RITA, {})
    room_id = created.event.room_id
    first = [created.event]
    initial: list[tuple[str, dict[str, Any], str]] = [
        ("m.room.member", {"membership": "join"}, RITA),
        ("m.room.power_levels", {"users": {RITA: 100}}, ""),
        ("m.room.join_rules", {"join_rule": "public"}, ""),
    ]
    for event_type, content, key in initial:
        sent = await remote.pipeline.send(EventDraft(room_id, event_type, RITA, content, key))
        first.append(sent.event)
    # Alice joins as a join through remote.test does: her join event built on the
    # room's state there (make_join), and the room stored here with that state.
    state = {e.state_key_tuple: e for e in first}
    join_event = build_local_event(
        created.event.room_version,
        EventDraft(room_id, "m.room.member", ALICE, {"membership": "join"}, ALICE),
        RoomPosition(
            prev_event_ids=[first[-1].event_id],
            max_prev_depth=first[-1].depth,
            state_before={key: e.event_id for key, e in state.items()},
        ),
        server_name=LOCAL,
        signing_key=local_id.key,
        origin_server_ts=1_700_000_000_000,
    )
    checker = PduChecker(TestKeyring(remote_id))
    received = [
        await checker.check(e.room_version, json.loads(json.dumps(e.pdu)), origin=REMOTE)
        for e in first
    ]
    joined = await local.pipeline.path.persist_joined_room(
        room_id, "10", join_event, RemoteState(state=received, auth_chain=received)
    )
    assert joined.outcome is not None and joined.outcome.is_accepted, joined
    answer = await remote.transactions.on_transaction(LOCAL, "l0", transaction(LOCAL, [join_event]))
    assert answer == {"pdus": {join_event.event_id: {}}}, answer
    yield Pair(local, remote, client, room_id)


@pytest_twisted.ensureDeferred
async def test_gap_before_a_received_event_is_filled_from_its_sender(pair: Pair) -> None:
    sent = [await pair.remote.send(pair.room_id, RITA, str(n)) for n in range(1, 5)]
    # Only the last one reaches us (the others were lost).
    answer = await pair.local.transactions.on_transaction(
        REMOTE, "r1", transaction(REMOTE, [sent[-1]])
    )
    assert answer == {"pdus": {sent[-1].event_id: {}}}
    assert (await pair.local.timeline(pair.room_id))[-4:] == ["1", "2", "3", "4"]
    assert any("get_missing_events" in path for _, path in pair.client.requests)


@pytest_twisted.ensureDeferred
async def test_events_and_state_are_fetched_and_checked(pair: Pair) -> None:
    assert pair.local.source is not None
    message = await pair.remote.send(pair.room_id, RITA, "hello")
    [fetched] = await pair.local.source.fetch_events(
        pair.room_id, [message.event_id], origin=REMOTE
    )
    assert fetched.event_id == message.event_id
    assert fetched.content["body"] == "hello"

    state = await pair.local.source.fetch_state_before(
        pair.room_id, message.event_id, origin=REMOTE
    )
    keys = sorted((e.type, e.state_key) for e in state.state)
    assert keys == [
        ("m.room.create", ""),
        ("m.room.join_rules", ""),
        ("m.room.member", ALICE),
        ("m.room.member", RITA),
        ("m.room.power_levels", ""),
    ]
    assert {e.type for e in state.auth_chain} >= {"m.room.create", "m.room.power_levels"}


@pytest_twisted.ensureDeferred
async def test_unreachable_or_ignorant_servers_leave_events_unavailable(pair: Pair) -> None:
    assert pair.local.source is not None
    try:
        await pair.local.source.fetch_events(pair.room_id, ["$nobody_has_it"], origin=REMOTE)
    except EventsUnavailable as unavailable:
        assert unavailable.event_ids == {"$nobody_has_it"}
    else:
        raise AssertionError("expected EventsUnavailable")
    message = await pair.remote.send(pair.room_id, RITA, "hello")
    # An origin we cannot reach, and no other server in the room holds it... but
    # remote.test is in the room: it is asked next.
    [fetched] = await pair.local.source.fetch_events(
        pair.room_id, [message.event_id], origin="down.test"
    )
    assert fetched.event_id == message.event_id
    assert ("down.test", f"/_matrix/federation/v1/event/{message.event_id}") in [
        (d, p.replace("%24", "$")) for d, p in pair.client.requests
    ]


class SwappingFederation(LoopbackFederation):
    """Answers every ``/event`` with the event ``instead`` (a lying server)."""

    def __init__(self, inner: LoopbackFederation, instead: Event) -> None:
        super().__init__(LOCAL, {})
        self._inner = inner
        self._instead = instead

    async def get_json(self, destination: str, path: str, **kwargs: Any) -> Any:
        if "/event/" in path:
            return {"origin": destination, "origin_server_ts": 1, "pdus": [self._instead.pdu]}
        return await self._inner.get_json(destination, path, **kwargs)


@pytest_twisted.ensureDeferred
async def test_an_answer_with_another_event_than_the_one_asked_for_is_refused(
    pair: Pair,
) -> None:
    asked = await pair.remote.send(pair.room_id, RITA, "asked")
    other = await pair.remote.send(pair.room_id, RITA, "other")
    lying = SwappingFederation(pair.client, other)
    source = FederationMissingEventSource(
        server_name=LOCAL,
        client=lying,
        checker=PduChecker(TestKeyring(pair.remote.identity)),
        rooms=EventGraphStore(pair.local.db, pair.local.state),
        events=pair.local.events,
    )
    try:
        await source.fetch_events(pair.room_id, [asked.event_id], origin=REMOTE)
    except EventsUnavailable:
        pass
    else:
        raise AssertionError("an event other than the one asked for was accepted")


def test_long_lists_of_pdus_are_checked_yielding_to_the_reactor() -> None:
    """With cached keys a check never waits: the loop lets the reactor run every
    CHECKS_BETWEEN_YIELDS PDUs instead of holding it for the whole list."""
    remote = TestServer(REMOTE)
    clock = task.Clock()
    source = FederationMissingEventSource(
        server_name=LOCAL,
        client=LoopbackFederation(LOCAL, {}),
        checker=PduChecker(TestKeyring(remote)),
        rooms=_NoServers(),
        events=_NoEvents(),
        reactor=clock,
    )
    room_id = "!r:remote.test"
    version = get_room_version("10")
    pdus = [
        remote.pdu(version, room_id, content={"body": str(n)})[0]
        for n in range(2 * CHECKS_BETWEEN_YIELDS + 20)
    ]
    checking = defer.ensureDeferred(source._check_all(room_id, version, pdus, REMOTE))
    # Control came back to the reactor before the list was done.
    assert not checking.called
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(0)
    checked = checking.result
    assert isinstance(checked, dict) and len(checked) == len(pdus)


class _NoServers:
    async def get_joined_servers(self, room_id: str) -> list[str]:
        return []


class _NoEvents:
    async def get_room(self, room_id: str) -> None:
        return None

    async def get_events(self, event_ids: Any) -> dict[str, Event]:
        return {}
