"""The client read side of the event tables."""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.timeline import EventConditions, TimelineStore
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


@pytest_twisted.ensureDeferred
async def test_graph_page_narrows_by_type_patterns_literally(db: Database) -> None:
    """``_``, ``%`` and ``\\`` in a ``types`` pattern are characters, not LIKE syntax;
    SQL may let through more than the filter (the reader re-checks) but never less."""
    rooms = Rooms.on(db)
    store = TimelineStore(db, rooms.events)
    room_id = await rooms.public_room(BOB)
    for event_type in ("a_b.x", "aXb.x", "a%b.x", "aZZb.x", "a\\b.x", "other"):
        await rooms.send(room_id, event_type, BOB, {})
    room = await rooms.events.get_room(room_id)
    assert room is not None

    async def types(conditions: EventConditions) -> list[str]:
        rows = await store.get_graph_page(
            room.room_nid, after=None, up_to=None, direction="f", limit=50, conditions=conditions
        )
        return [row.event.type for row in rows]

    assert await types(EventConditions(types=("a_b*",))) == ["a_b.x"]
    assert await types(EventConditions(types=("a%b*",))) == ["a%b.x"]
    assert await types(EventConditions(types=("a\\b*",))) == ["a\\b.x"]
    assert await types(EventConditions(types=("a*b.x", "other"))) == [
        "a_b.x",
        "aXb.x",
        "a%b.x",
        "aZZb.x",
        "a\\b.x",
        "other",
    ]
    assert await types(EventConditions(types=())) == []
    assert await types(EventConditions(senders=())) == []
    assert "other" not in await types(EventConditions(not_types=("other",)))
    assert await types(EventConditions(types=("*.x",), not_senders=(BOB,))) == []
