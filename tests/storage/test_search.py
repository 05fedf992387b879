"""The search index and its vocabulary, on both engines."""

from __future__ import annotations

import pytest_twisted

from homeserver.search.text import MAX_WORDS_PER_EVENT
from homeserver.storage.database import Database
from homeserver.storage.search import (
    FLAG_HAS_URL,
    MEDIA_KINDS,
    ROOM_TOKEN_MAX_ROOMS,
    IndexedEvent,
    PageKey,
    RoomFacts,
    RoomScope,
    SearchConditions,
    SearchStore,
    TermGroup,
    names_rooms,
)
from tests.receipts.rooms import BOB, CAROL, Rooms


async def _indexed(
    rooms: Rooms, room_id: str, sender: str, body: str, flags: int = 0
) -> IndexedEvent:
    event_id = await rooms.message(room_id, sender, body)
    event = (await rooms.events.get_events([event_id]))[event_id]
    assert event.internal.stream_ordering is not None
    return IndexedEvent(
        event.internal.stream_ordering, await _room_nid(rooms, room_id), flags, body
    )


async def _room_nid(rooms: Rooms, room_id: str) -> int:
    room = await rooms.events.get_room(room_id)
    assert room is not None
    return room.room_nid


@pytest_twisted.ensureDeferred
async def test_updates_are_idempotent_and_keep_the_vocabulary_exact(db: Database) -> None:
    rooms = Rooms.on(db)
    store = SearchStore(db)
    room_id = await rooms.public_room(BOB)
    first = await _indexed(rooms, room_id, BOB, "hello world")
    second = await _indexed(rooms, room_id, BOB, "hello there hello")
    for _ in range(2):  # the consumer delivers at least once
        await store.update([first, second], ())
    assert await store.term_counts(["hello", "world", "there", "nope"]) == {
        "hello": 2,
        "world": 1,
        "there": 1,
    }
    scope = SearchConditions(rooms=[RoomScope(await _room_nid(rooms, room_id))])
    hits = await store.search([TermGroup(prefix="hel")], scope, order="recent", limit=10)
    assert [hit.stream_ordering for hit in hits] == [second.stream_ordering, first.stream_ordering]
    for _ in range(2):
        await store.update([], {first.stream_ordering})
    assert await store.term_counts(["hello", "world", "there"]) == {"hello": 1, "there": 1}
    assert await store.search([TermGroup(None, ("world",))], scope, order="rank", limit=10) == []
    assert await store.count([TermGroup(None, ("hello",))], scope, cap=10) == 1


@pytest_twisted.ensureDeferred
async def test_rank_prefers_more_occurrences_and_pages_after_the_last_hit(db: Database) -> None:
    rooms = Rooms.on(db)
    store = SearchStore(db)
    room_id = await rooms.public_room(BOB)
    docs = [
        await _indexed(rooms, room_id, BOB, "kiwi and many other words in this line"),
        await _indexed(rooms, room_id, BOB, "kiwi kiwi kiwi"),
    ]
    await store.update(docs, ())
    scope = SearchConditions(rooms=[RoomScope(await _room_nid(rooms, room_id))])
    group = [TermGroup(None, ("kiwi",))]
    hits = await store.search(group, scope, order="rank", limit=10)
    assert [hit.stream_ordering for hit in hits] == [
        docs[1].stream_ordering,
        docs[0].stream_ordering,
    ]
    assert hits[0].rank > hits[1].rank
    first = PageKey(hits[0].stream_ordering, hits[0].rank)
    second_page = await store.search(group, scope, order="rank", limit=10, after=first)
    assert [hit.stream_ordering for hit in second_page] == [docs[0].stream_ordering]
    # Newer messages (which change how common the word is, and so every bm25 rank)
    # do not bring the first page's hit back on the second (keyset paging).
    newer = [await _indexed(rooms, room_id, BOB, f"kiwi {i}") for i in range(3)]
    await store.update(newer, ())
    again = await store.search(group, scope, order="rank", limit=10, after=first)
    assert docs[1].stream_ordering not in {hit.stream_ordering for hit in again}
    assert docs[0].stream_ordering in {hit.stream_ordering for hit in again}


@pytest_twisted.ensureDeferred
async def test_equal_ranks_page_newest_first_without_repeats(db: Database) -> None:
    rooms = Rooms.on(db)
    store = SearchStore(db)
    room_id = await rooms.public_room(BOB)
    docs = [await _indexed(rooms, room_id, BOB, "same words here") for _ in range(5)]
    await store.update(docs, ())
    scope = SearchConditions(rooms=[RoomScope(await _room_nid(rooms, room_id))])
    seen: list[int] = []
    after = None
    for _ in range(6):
        page = await store.search([TermGroup("same")], scope, order="rank", limit=2, after=after)
        if not page:
            break
        seen.extend(hit.stream_ordering for hit in page)
        after = PageKey(page[-1].stream_ordering, page[-1].rank)
    assert seen == sorted((doc.stream_ordering for doc in docs), reverse=True)


@pytest_twisted.ensureDeferred
async def test_conditions_narrow_by_room_range_sender_time_and_flags(db: Database) -> None:
    rooms = Rooms.on(db)
    store = SearchStore(db)
    room_id = await rooms.public_room(BOB, CAROL)
    other_room = await rooms.public_room(BOB)
    plain = await _indexed(rooms, room_id, BOB, "report draft")
    image = await _indexed(
        rooms, room_id, CAROL, "report.png", FLAG_HAS_URL | MEDIA_KINDS["image"] << 1
    )
    elsewhere = await _indexed(rooms, other_room, BOB, "report final")
    await store.update([plain, image, elsewhere], ())
    nid, other_nid = await _room_nid(rooms, room_id), await _room_nid(rooms, other_room)
    group = [TermGroup(prefix="report")]

    async def found(**conditions: object) -> set[int]:
        narrowed = SearchConditions(
            **{"rooms": [RoomScope(nid), RoomScope(other_nid)], **conditions}  # type: ignore[arg-type]
        )
        hits = await store.search(group, narrowed, order="recent", limit=10)
        return {hit.stream_ordering for hit in hits}

    everything = {plain.stream_ordering, image.stream_ordering, elsewhere.stream_ordering}
    assert await found() == everything
    assert await found(rooms=[RoomScope(nid)]) == {plain.stream_ordering, image.stream_ordering}
    assert await found(rooms=[RoomScope(nid, up_to=plain.stream_ordering)]) == {
        plain.stream_ordering
    }
    assert await found(rooms=[RoomScope(nid, after=plain.stream_ordering)]) == {
        image.stream_ordering
    }
    assert await found(senders=(CAROL,)) == {image.stream_ordering}
    assert await found(not_senders=(CAROL,)) == everything - {image.stream_ordering}
    assert await found(contains_url=True) == {image.stream_ordering}
    assert await found(contains_url=False) == everything - {image.stream_ordering}
    assert await found(media=(MEDIA_KINDS["image"],)) == {image.stream_ordering}
    assert await found(media=(MEDIA_KINDS["audio"],)) == set()
    assert await found(types=("m.room.name",)) == set()
    assert await found(since_ts=2**62) == set()
    assert await found(until_ts=2**62) == everything
    assert await found(rooms=[]) == set()


@pytest_twisted.ensureDeferred
async def test_typo_candidates_come_from_the_vocabulary(db: Database) -> None:
    rooms = Rooms.on(db)
    store = SearchStore(db)
    room_id = await rooms.public_room(BOB)
    doc = await _indexed(rooms, room_id, BOB, "the message about encryption and the weather")
    await store.update([doc], ())
    # Trigrams find long words, whatever letter is wrong.
    assert "message" in await store.terms_sharing_trigrams("messgae", 10)
    assert "encryption" in await store.terms_sharing_trigrams("xncryption", 10)
    # Short words share no trigram with their typos; the same first two letters (or
    # those two swapped) find them, the most common first.
    assert "the" in await store.terms_starting_like({"t", "et"}, 2, 4, 100)
    assert "the" in await store.terms_starting_like({"h", "th"}, 2, 4, 100)
    assert "weather" not in await store.terms_starting_like({"t", "et"}, 2, 4, 100)
    assert "about" not in await store.terms_starting_like({"a"}, 2, 4, 100)  # too long
    # The most common first, when there are more than asked for.
    await store.update([await _indexed(rooms, room_id, BOB, "the tea")], ())
    assert await store.terms_starting_like({"t"}, 2, 4, 1) == {"the": 2}


@pytest_twisted.ensureDeferred
async def test_few_rooms_and_many_rooms_find_the_same_hits(db: Database) -> None:
    """Rooms named in the full-text query or tested per hit: the two plans agree,
    and a room's number is no word."""
    rooms = Rooms.on(db)
    store = SearchStore(db)
    room_id = await rooms.public_room(BOB)
    other_room = await rooms.public_room(BOB)
    nid, other_nid = await _room_nid(rooms, room_id), await _room_nid(rooms, other_room)
    docs = [
        await _indexed(rooms, room_id, BOB, f"plan check {nid}"),
        await _indexed(rooms, other_room, BOB, "plan check"),
    ]
    await store.update(docs, ())
    named = SearchConditions(rooms=[RoomScope(nid)], room_tokens=True)
    tested = SearchConditions(rooms=[RoomScope(nid)])
    # Room NIDs no room has, past the most rooms ever named.
    many = SearchConditions(
        rooms=[RoomScope(nid), *(RoomScope(10**9 + i) for i in range(ROOM_TOKEN_MAX_ROOMS))],
        room_tokens=True,
    )
    for conditions in (named, tested, many):
        hits = await store.search([TermGroup("plan")], conditions, order="recent", limit=10)
        assert [hit.stream_ordering for hit in hits] == [docs[0].stream_ordering]
        assert await store.count([TermGroup("plan")], conditions, cap=10) == 1
    # The room's number is in the room column only: as a word it is in doc 0 alone.
    both = SearchConditions(rooms=[RoomScope(nid), RoomScope(other_nid)], room_tokens=True)
    by_number = await store.search(
        [TermGroup(None, (str(other_nid),))], both, order="recent", limit=10
    )
    assert by_number == []


@pytest_twisted.ensureDeferred
async def test_an_encrypted_room_loses_its_rows_and_their_words(db: Database) -> None:
    rooms = Rooms.on(db)
    store = SearchStore(db)
    room_id = await rooms.public_room(BOB)
    other_room = await rooms.public_room(BOB)
    nid = await _room_nid(rooms, room_id)
    kept = await _indexed(rooms, other_room, BOB, "plaintext elsewhere")
    await store.update([await _indexed(rooms, room_id, BOB, "plaintext secret"), kept], ())
    await store.update([], (), {nid: RoomFacts(encrypted=True)})
    assert await store.term_counts(["plaintext", "secret", "elsewhere"]) == {
        "plaintext": 1,
        "elsewhere": 1,
    }
    assert (await store.indexed_rooms([nid]))[nid].encrypted
    # Nothing of the room is indexed after that, even if handed over.
    await store.update([await _indexed(rooms, room_id, BOB, "later secret")], ())
    scope = SearchConditions(rooms=[RoomScope(nid)])
    assert await store.search([TermGroup("secret")], scope, order="recent", limit=5) == []


@pytest_twisted.ensureDeferred
async def test_the_vocabulary_counts_exactly_the_words_indexed(db: Database) -> None:
    """PostgreSQL keeps positions up to 16,383: a longer text is cut there on both
    engines, and the vocabulary does not count words the index does not hold."""
    rooms = Rooms.on(db)
    store = SearchStore(db)
    room_id = await rooms.public_room(BOB)
    nid = await _room_nid(rooms, room_id)
    position = (await _indexed(rooms, room_id, BOB, "x")).stream_ordering
    long_text = " ".join(["filler"] * MAX_WORDS_PER_EVENT + ["beyond"])
    await store.update([IndexedEvent(position, nid, 0, long_text)], ())
    assert await store.term_counts(["filler", "beyond"]) == {"filler": 1}
    scope = SearchConditions(rooms=[RoomScope(nid)])
    assert await store.search([TermGroup("beyond")], scope, order="recent", limit=5) == []
    await store.update([], {position})
    assert await store.term_counts(["filler"]) == {}


@pytest_twisted.ensureDeferred
async def test_rooms_rows_are_counted_to_choose_the_plan(db: Database) -> None:
    rooms = Rooms.on(db)
    store = SearchStore(db)
    small, big = await rooms.public_room(BOB), await rooms.public_room(BOB)
    small_nid, big_nid = await _room_nid(rooms, small), await _room_nid(rooms, big)
    docs = [await _indexed(rooms, small, BOB, "one")]
    docs += [await _indexed(rooms, big, BOB, f"many {i}") for i in range(5)]
    for _ in range(2):  # repeated batches count once
        await store.update(docs, ())
    await store.update([], {docs[-1].stream_ordering})
    found = await store.indexed_rooms([small_nid, big_nid])
    assert (found[small_nid].docs, found[big_nid].docs) == (1, 4)
    assert await store.indexed_total() == 5
    assert names_rooms(1, found[small_nid].docs, 5)
    assert not names_rooms(1, found[big_nid].docs, 5)
    assert not names_rooms(ROOM_TOKEN_MAX_ROOMS + 1, 0, 5)
