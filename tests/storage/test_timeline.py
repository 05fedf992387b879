"""The client read side of the event tables."""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.timeline import TimelineStore
from tests.receipts.rooms import BOB, CAROL, Rooms


@pytest_twisted.ensureDeferred
async def test_is_joined_follows_current_membership(db: Database) -> None:
    rooms = Rooms.on(db)
    store = TimelineStore(db, rooms.events)
    room = await rooms.public_room(BOB)
    assert await store.is_joined(BOB, room)
    assert not await store.is_joined(CAROL, room)
    assert not await store.is_joined(BOB, "!nowhere:example.org")
    await rooms.leave(room, BOB)
    assert not await store.is_joined(BOB, room)
