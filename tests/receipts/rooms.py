"""Rooms built in-process through the real event pipeline, for receipt, typing and
unread-count tests on both engines."""

from __future__ import annotations

from typing import Any

import attrs
from signedjson.key import generate_signing_key
from twisted.internet import reactor

from homeserver.clock import Clock
from homeserver.events.event import InternalMetadata
from homeserver.rooms.builder import EventDraft
from homeserver.rooms.pipeline import EventPipeline, SentEvent
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore

SERVER = "example.org"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"
CAROL = "@carol:example.org"


@attrs.define
class Rooms:
    """An event store, a state store and a pipeline sharing one database."""

    events: EventStore
    state: StateStore
    pipeline: EventPipeline

    @classmethod
    def on(cls, db: Database) -> Rooms:
        state = StateStore(db)
        events = EventStore(db, state)
        pipeline = EventPipeline(
            server_name=SERVER,
            signing_key=generate_signing_key("t"),
            clock=Clock(reactor),
            events=events,
            state=state,
        )
        return cls(events, state, pipeline)

    async def send(
        self,
        room_id: str,
        event_type: str,
        sender: str,
        content: dict[str, Any],
        state_key: str | None = None,
        *,
        internal: InternalMetadata | None = None,
    ) -> SentEvent:
        draft = EventDraft(room_id, event_type, sender, content, state_key=state_key)
        return await self.pipeline.send(draft, internal=internal)

    async def message(self, room_id: str, sender: str, body: str = "hi", **extra: Any) -> str:
        """Send an ``m.text`` message; returns its event ID."""
        sent = await self.send(
            room_id, "m.room.message", sender, {"msgtype": "m.text", "body": body, **extra}
        )
        return sent.event.event_id

    async def join(self, room_id: str, user_id: str) -> str:
        sent = await self.send(room_id, "m.room.member", user_id, {"membership": "join"}, user_id)
        return sent.event.event_id

    async def leave(self, room_id: str, user_id: str) -> None:
        await self.send(room_id, "m.room.member", user_id, {"membership": "leave"}, user_id)

    async def public_room(self, *members: str, creator: str = ALICE) -> str:
        """``creator`` (power 100) makes a public room; each of ``members`` joins."""
        [created, *_] = await self.pipeline.create_room("10", creator, {})
        room_id = created.event.room_id
        await self.join(room_id, creator)
        await self.send(room_id, "m.room.power_levels", creator, {"users": {creator: 100}}, "")
        await self.send(room_id, "m.room.join_rules", creator, {"join_rule": "public"}, "")
        for member in members:
            await self.join(room_id, member)
        return room_id
