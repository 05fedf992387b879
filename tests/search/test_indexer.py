"""The search indexer against the store, on both engines, without the /search
handler (which would hide a row the indexer failed to remove): history indexed on
first start, redactions and edits, encrypted rooms, and the visibility facts kept
per room."""

from __future__ import annotations

from typing import Any

import attrs
import pytest_twisted
from twisted.internet import reactor

from homeserver.rooms.builder import EventDraft
from homeserver.rooms.state import RoomStateReader
from homeserver.search.indexer import SearchIndexer
from homeserver.storage.database import Database
from homeserver.storage.search import RoomScope, SearchConditions, SearchStore, TermGroup
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.storage.timeline import TimelineStore
from homeserver.streams.consumer import StreamedEvent
from tests.receipts.rooms import ALICE, BOB, Rooms


@attrs.define
class Setup:
    rooms: Rooms
    store: SearchStore
    indexer: SearchIndexer

    async def caught_up(self) -> None:
        """Start the indexer (if not running) and wait until it has read everything."""
        self.indexer.consumer.start()
        position = await self.rooms.events.get_max_stream_ordering()
        assert await self.indexer.consumer.wait_for(position, 30)

    async def found(self, room_id: str, word: str) -> list[int]:
        """Positions the index holds for ``word`` in the room, newest first."""
        room = await self.rooms.events.get_room(room_id)
        assert room is not None
        scope = SearchConditions(rooms=[RoomScope(room.room_nid)])
        hits = await self.store.search([TermGroup(word)], scope, order="recent", limit=50)
        return [hit.stream_ordering for hit in hits]

    async def position(self, event_id: str) -> int:
        event = (await self.rooms.events.get_events([event_id]))[event_id]
        assert event.internal.stream_ordering is not None
        return event.internal.stream_ordering

    async def redact(self, room_id: str, event_id: str) -> None:
        draft = EventDraft(room_id, "m.room.redaction", ALICE, {}, redacts=event_id)
        await self.rooms.pipeline.send(draft)


def _setup(db: Database) -> Setup:
    rooms = Rooms.on(db)
    timeline = TimelineStore(db, rooms.events)
    store = SearchStore(db)
    indexer = SearchIndexer(
        store=store,
        events=rooms.events,
        timeline=timeline,
        state=RoomStateReader(rooms.events, rooms.state, timeline),
        consumers=StreamConsumerStore(db),
        reactor=reactor,
        poll_interval_s=0.05,
        retry_delay_s=0.05,
    )
    return Setup(rooms, store, indexer)


async def _stopped(setup: Setup) -> None:
    await setup.indexer.consumer.stop()


@pytest_twisted.ensureDeferred
async def test_history_written_before_the_first_start_is_indexed(db: Database) -> None:
    setup = _setup(db)
    room_id = await setup.rooms.public_room(BOB)
    old = await setup.rooms.message(room_id, BOB, "archived meeting notes")
    # Nothing indexed yet: the indexer has never run.
    assert await setup.found(room_id, "archived") == []
    await setup.caught_up()
    assert await setup.found(room_id, "archived") == [await setup.position(old)]
    await _stopped(setup)


@pytest_twisted.ensureDeferred
async def test_a_redaction_removes_the_row_and_a_redacted_event_is_never_indexed(
    db: Database,
) -> None:
    setup = _setup(db)
    room_id = await setup.rooms.public_room(BOB)
    # Redacted before the indexer ever reads it.
    early = await setup.rooms.message(room_id, BOB, "earlysecret")
    await setup.redact(room_id, early)
    late = await setup.rooms.message(room_id, BOB, "latesecret")
    await setup.caught_up()
    assert await setup.store.term_counts(["earlysecret", "latesecret"]) == {"latesecret": 1}
    assert await setup.found(room_id, "latesecret") == [await setup.position(late)]
    await setup.redact(room_id, late)
    await setup.caught_up()
    assert await setup.found(room_id, "latesecret") == []
    assert await setup.store.term_counts(["latesecret"]) == {}
    await _stopped(setup)


def _edit(original: str, body: str) -> dict[str, Any]:
    return {
        "msgtype": "m.text",
        "body": f"* {body}",
        "m.new_content": {"msgtype": "m.text", "body": body},
        "m.relates_to": {"rel_type": "m.replace", "event_id": original},
    }


@pytest_twisted.ensureDeferred
async def test_edits_are_indexed_with_their_new_text_and_go_with_their_original(
    db: Database,
) -> None:
    setup = _setup(db)
    room_id = await setup.rooms.public_room(BOB)
    original = await setup.rooms.message(room_id, BOB, "first draft")
    sent = await setup.rooms.send(room_id, "m.room.message", BOB, _edit(original, "final copy"))
    await setup.caught_up()
    # The edit is found by its new text, under the edit event.
    assert await setup.found(room_id, "final") == [await setup.position(sent.event.event_id)]
    await setup.redact(room_id, original)
    await setup.caught_up()
    assert await setup.found(room_id, "first") == []
    assert await setup.found(room_id, "final") == []
    # An edit of an already redacted event is not indexed either.
    await setup.rooms.send(room_id, "m.room.message", BOB, _edit(original, "revived text"))
    await setup.caught_up()
    assert await setup.found(room_id, "revived") == []
    await _stopped(setup)


@pytest_twisted.ensureDeferred
async def test_an_encrypted_room_is_never_indexed(db: Database) -> None:
    setup = _setup(db)
    plain = await setup.rooms.public_room(BOB)
    later = await setup.rooms.public_room(BOB)
    before = await setup.rooms.message(later, BOB, "plaintext before encryption")
    encryption = {"algorithm": "m.megolm.v1.aes-sha2"}
    # Reading history of a room encrypted since: its plaintext past is not indexed,
    # even in a batch that stops before the m.room.encryption event.
    await setup.rooms.send(later, "m.room.encryption", ALICE, encryption, "")
    loaded = (await setup.rooms.events.get_events([before]))[before]
    await setup.indexer.handle([StreamedEvent(await setup.position(before), loaded)])
    assert await setup.found(later, "plaintext") == []
    # A room encrypted after its messages were indexed loses them.
    await setup.rooms.message(plain, BOB, "plaintext now")
    await setup.caught_up()
    assert len(await setup.found(plain, "plaintext")) == 1
    await setup.rooms.send(plain, "m.room.encryption", ALICE, encryption, "")
    await setup.rooms.message(plain, BOB, "plaintext again")
    await setup.caught_up()
    assert await setup.found(plain, "plaintext") == []
    assert await setup.store.term_counts(["plaintext"]) == {}
    room = await setup.rooms.events.get_room(plain)
    assert room is not None
    assert (await setup.store.indexed_rooms([room.room_nid]))[room.room_nid].encrypted
    await _stopped(setup)


@pytest_twisted.ensureDeferred
async def test_the_first_event_under_shared_visibility_is_recorded(db: Database) -> None:
    setup = _setup(db)
    room_id = await setup.rooms.public_room(BOB)
    visibility = "m.room.history_visibility"
    await setup.rooms.send(room_id, visibility, ALICE, {"history_visibility": "joined"}, "")
    await setup.rooms.message(room_id, BOB, "members only")
    await setup.caught_up()
    room = await setup.rooms.events.get_room(room_id)
    assert room is not None
    facts = await setup.store.indexed_rooms([room.room_nid])
    assert facts[room.room_nid].first_open is None
    await setup.rooms.send(room_id, visibility, ALICE, {"history_visibility": "shared"}, "")
    shared = await setup.rooms.message(room_id, BOB, "for later members too")
    await setup.rooms.message(room_id, BOB, "and this")
    await setup.caught_up()
    facts = await setup.store.indexed_rooms([room.room_nid])
    assert facts[room.room_nid].first_open == await setup.position(shared)
    await _stopped(setup)
