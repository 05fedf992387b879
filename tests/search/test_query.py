"""From a search term to what the index is asked: prefixes, typos, and real words
left alone."""

from __future__ import annotations

import pytest_twisted

from homeserver.search.query import MAX_FUZZY_WORDS, QueryParser
from homeserver.storage.database import Database
from homeserver.storage.search import IndexedEvent, SearchStore, TermGroup


async def _store_with(db: Database, *texts: str) -> SearchStore:
    """A vocabulary from ``texts`` (index rows need no events for this)."""
    store = SearchStore(db)
    await store.update([IndexedEvent(i + 1, 1, 0, t) for i, t in enumerate(texts)], ())
    return store


@pytest_twisted.ensureDeferred
async def test_words_are_prefixes_and_misspelled_words_gain_their_neighbours(
    db: Database,
) -> None:
    store = await _store_with(db, "message", "encryption keys", "the")
    parsed = await QueryParser(store).parse("Messgae encrypt teh")
    assert parsed.groups == (
        TermGroup(prefix="messgae", exact=("message",)),
        TermGroup(prefix="encrypt"),
        # Three letters: too short for typos, long enough for a prefix.
        TermGroup(prefix="teh"),
    )
    assert parsed.matches("encryption") and parsed.matches("message")
    assert not parsed.matches("keys")


@pytest_twisted.ensureDeferred
async def test_a_word_the_index_holds_is_never_corrected(db: Database) -> None:
    store = await _store_with(
        db, *["word"] * 3, "ward", *["wore"] * 20, "form", "form", *["from"] * 40
    )
    # Real words, even beside far more common neighbours: "form" does not find "from".
    for word in ("word", "form"):
        parsed = await QueryParser(store).parse(word)
        assert parsed.groups == (TermGroup(prefix=word),)


@pytest_twisted.ensureDeferred
async def test_a_word_in_one_event_only_may_be_a_typo(db: Database) -> None:
    store = await _store_with(db, "wrod", *["word"] * 5, "worm")
    parsed = await QueryParser(store).parse("wrod")
    # Only more common neighbours are offered ("worm", in one event, is not).
    assert parsed.groups == (TermGroup(prefix="wrod", exact=("word",)),)


@pytest_twisted.ensureDeferred
async def test_typo_lookups_are_capped_per_search(db: Database) -> None:
    real = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    store = await _store_with(db, *real)
    typos = ["alpah", "bravp", "chralie", "detla", "ehco", "foxtrto"]
    parsed = await QueryParser(store).parse(" ".join(typos))
    corrected = [group for group in parsed.groups if group.exact]
    assert len(corrected) == MAX_FUZZY_WORDS
    assert [group.exact for group in corrected] == [(word,) for word in real[:MAX_FUZZY_WORDS]]


@pytest_twisted.ensureDeferred
async def test_longer_words_allow_two_edits_and_short_ones_none(db: Database) -> None:
    store = await _store_with(db, "notification", "cat")
    parsed = await QueryParser(store).parse("notifcaton ca")
    assert parsed.groups == (
        TermGroup(prefix="notifcaton", exact=("notification",)),
        TermGroup(prefix=None, exact=("ca",)),
    )
    assert (await QueryParser(store).parse("!!! ...")).groups == ()
