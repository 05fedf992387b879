"""A directory handler over in-process rooms (the event pipeline on each engine)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest_twisted
from signedjson.key import generate_signing_key
from twisted.internet import reactor

from homeserver.clock import Clock
from homeserver.directory.handler import DirectoryHandler
from homeserver.rooms.builder import EventDraft
from homeserver.rooms.pipeline import EventPipeline, SentEvent
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.database import Database
from homeserver.storage.directory import DirectoryStore
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore

SERVER = "example.org"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"
CAROL = "@carol:example.org"


@attrs.frozen
class Rooms:
    """The pipeline to make rooms with, and the handler under test."""

    pipeline: EventPipeline
    directory: DirectoryHandler
    store: DirectoryStore

    async def send(
        self,
        room_id: str,
        event_type: str,
        sender: str,
        content: dict[str, Any],
        state_key: str | None = None,
    ) -> SentEvent:
        sent = await self.pipeline.send(
            EventDraft(room_id, event_type, sender, content, state_key=state_key)
        )
        if state_key is not None:
            # What the rooms code does from the pipeline's new-event hook.
            await self.directory.on_state_changed(room_id)
        return sent

    async def room(
        self,
        *,
        join_rule: str = "public",
        members: tuple[str, ...] = (),
        create: dict[str, Any] | None = None,
        version: str = "10",
    ) -> str:
        """Alice creates a room (power 100), sets the join rule; ``members`` join."""
        [created, *_] = await self.pipeline.create_room(version, ALICE, create or {})
        room_id = created.event.room_id
        await self.send(room_id, "m.room.member", ALICE, {"membership": "join"}, ALICE)
        levels = {} if version == "12" else {"users": {ALICE: 100}}
        await self.send(room_id, "m.room.power_levels", ALICE, levels, "")
        await self.send(room_id, "m.room.join_rules", ALICE, {"join_rule": join_rule}, "")
        for member in members:
            await self.send(room_id, "m.room.member", member, {"membership": "join"}, member)
        return room_id


@pytest_twisted.async_yield_fixture
async def rooms(db: Database) -> AsyncIterator[Rooms]:
    state = StateStore(db)
    events = EventStore(db, state)
    store = DirectoryStore(db)
    clock = Clock(reactor)
    pipeline = EventPipeline(
        server_name=SERVER,
        signing_key=generate_signing_key("test"),
        clock=clock,
        events=events,
        state=state,
    )
    timeline = TimelineStore(db, events)
    directory = DirectoryHandler(
        server_name=SERVER,
        clock=clock,
        directory=store,
        rooms=RoomStateReader(events, state, timeline),
        timeline=timeline,
    )
    yield Rooms(pipeline, directory, store)
