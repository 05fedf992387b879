"""A room on our server (``example.org``) that a remote server's user has joined,
built with the real event path and stores on both engines, and what the inbound
federation handlers are made of."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest_twisted
from signedjson.key import generate_signing_key
from twisted.internet import reactor

from federation.acl import ServerAcl
from federation.inbound.edus import EduRegistry
from federation.inbound.pdu_checks import PduChecker
from federation.inbound.transactions import TransactionHandler
from homeserver.clock import Clock
from homeserver.events.event import Event, StateKey
from homeserver.rooms.builder import EventDraft, RoomPosition, build_local_event
from homeserver.rooms.pipeline import EventPipeline
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.federation_inbound import LocalResidencyStore, ReceivedTransactionStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore
from tests.federation.inbound.signing import TestKeyring, TestServer

LOCAL = "example.org"
ALICE = f"@alice:{LOCAL}"
REMOTE = "remote.test"
RITA = f"@rita:{REMOTE}"


@attrs.define
class FederatedRoom:
    """Alice's public v10 room on our server, joined by Rita of remote.test."""

    db: Database
    pipeline: EventPipeline
    events: EventStore
    state: StateStore
    room_id: str
    remote: TestServer
    ts: int = 1_700_000_000_000

    async def current_state(self) -> dict[StateKey, Event]:
        room = await self.events.get_room(self.room_id)
        assert room is not None and room.current_state_group is not None
        ids = await self.state.get_state_ids(room.current_state_group)
        loaded = await self.events.get_events(list(ids.values()))
        return {key: loaded[event_id] for key, event_id in ids.items()}

    async def last(self) -> Event:
        room = await self.events.get_room(self.room_id)
        assert room is not None
        extremities = await self.events.get_forward_extremities(room.room_nid)
        loaded = await self.events.get_events(extremities)
        return max(loaded.values(), key=lambda e: e.depth)

    async def remote_pdu(
        self,
        event_type: str,
        content: dict[str, Any],
        *,
        sender: str = RITA,
        state_key: str | None = None,
        server: TestServer | None = None,
    ) -> tuple[dict[str, Any], str]:
        """A PDU a remote server would send next in the room: after our latest event,
        on our current state; and its ID.  Signed by ``server`` (default remote.test)."""
        server = server or self.remote
        self.ts += 1
        last = await self.last()
        state = await self.current_state()
        event = build_local_event(
            last.room_version,
            EventDraft(self.room_id, event_type, sender, content, state_key=state_key),
            RoomPosition(
                prev_event_ids=[last.event_id],
                max_prev_depth=last.depth,
                state_before={key: e.event_id for key, e in state.items()},
            ),
            server_name=server.name,
            signing_key=server.key,
            origin_server_ts=self.ts,
        )
        return dict(event.pdu), event.event_id

    async def send_local(
        self, event_type: str, content: dict[str, Any], state_key: str | None = None
    ) -> Event:
        sent = await self.pipeline.send(
            EventDraft(self.room_id, event_type, ALICE, content, state_key=state_key)
        )
        return sent.event

    async def timeline(self) -> list[str]:
        room = await self.events.get_room(self.room_id)
        assert room is not None
        events = await TimelineStore(self.db, self.events).get_room_events(
            room.room_nid, after=None, up_to=None, direction="b", limit=1000
        )
        return [e.event_id for e in reversed(events)]


async def federated_room(db: Database, remote: TestServer) -> FederatedRoom:
    state = StateStore(db)
    events = EventStore(db, state)
    pipeline = EventPipeline(
        server_name=LOCAL,
        signing_key=generate_signing_key("local"),
        clock=Clock(reactor),
        events=events,
        state=state,
    )
    [created, *_] = await pipeline.create_room("10", ALICE, {})
    room = FederatedRoom(db, pipeline, events, state, created.event.room_id, remote)
    await room.send_local("m.room.member", {"membership": "join"}, ALICE)
    await room.send_local("m.room.power_levels", {"users": {ALICE: 100}}, "")
    await room.send_local("m.room.join_rules", {"join_rule": "public"}, "")
    pdu, _ = await room.remote_pdu("m.room.member", {"membership": "join"}, state_key=RITA)
    checked = await PduChecker(TestKeyring(remote)).check(
        created.event.room_version, pdu, origin=REMOTE
    )
    [result] = await pipeline.path.receive(room.room_id, [checked], origin=REMOTE)
    assert result.outcome is not None and result.outcome.is_accepted, result
    return room


@pytest_twisted.async_yield_fixture
async def room(db: Database) -> AsyncIterator[FederatedRoom]:
    yield await federated_room(db, TestServer(REMOTE))


@attrs.define
class Inbound:
    """The inbound handlers over the room's stores."""

    transactions: TransactionHandler
    keyring: TestKeyring
    edus: EduRegistry
    acl: ServerAcl
    store: ReceivedTransactionStore


def build_inbound(room: FederatedRoom, *servers: TestServer) -> Inbound:
    keyring = TestKeyring(room.remote, *servers)
    edus = EduRegistry()
    acl = ServerAcl(events=room.events, state=room.state)
    store = ReceivedTransactionStore(room.db)
    transactions = TransactionHandler(
        store=store,
        rooms=room.events,
        residency=LocalResidencyStore(room.db, LOCAL),
        checker=PduChecker(keyring),
        acl=acl,
        path=room.pipeline.path,
        edus=edus,
        clock=Clock(reactor),
    )
    return Inbound(transactions, keyring, edus, acl, store)
