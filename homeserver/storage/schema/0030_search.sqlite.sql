-- Owner: storage.search.
--
-- The message search index (docs/search.md), filled by the search indexer from the
-- events stream.  One row per indexed event (m.room.message body, m.room.name name,
-- m.room.topic topic), keyed by its stream position, so the row joins
-- events.stream_ordering for sender, type and time, and "newest first" is the
-- full-text index's own rowid order.  `words` is the text as search.text made it
-- (folded words, space-separated): FTS5 is an external-content index over it, which
-- needs the indexed text to delete a row (a redaction).  `room` (the room's NID) is
-- indexed too, as a column of its own, so a search in a few rooms intersects their
-- posting lists with the words' instead of testing every hit's room.
CREATE TABLE search_events (
    stream_ordering INTEGER PRIMARY KEY,
    room INTEGER NOT NULL,
    -- bit 0: content.url is a string; bits 1-3: media kind (1 image, 2 audio,
    -- 3 video, 4 file)
    flags INTEGER NOT NULL,
    words TEXT NOT NULL
);

-- Words are already folded and split by search.text (runs of letters, marks and
-- digits, joined by spaces): the ascii tokenizer splits on the spaces only (every
-- non-ASCII character is part of a token), so the index holds exactly the terms
-- search_terms names.
CREATE VIRTUAL TABLE search_fts USING fts5(
    words,
    room,
    content = 'search_events',
    content_rowid = 'stream_ordering',
    tokenize = 'ascii'
);

-- bm25 over the words only: the room column weighs nothing.
INSERT INTO search_fts (search_fts, rank) VALUES ('rank', 'bm25(1.0, 0.0)');

CREATE TRIGGER search_events_added AFTER INSERT ON search_events BEGIN INSERT INTO search_fts (rowid, words, room) VALUES (new.stream_ordering, new.words, new.room); END;

CREATE TRIGGER search_events_removed AFTER DELETE ON search_events BEGIN INSERT INTO search_fts (search_fts, rowid, words, room) VALUES ('delete', old.stream_ordering, old.words, old.room); END;

-- The vocabulary: every indexed word and how many indexed events hold it, for
-- fuzzy matching (a misspelled word is matched to the terms near it).
CREATE TABLE search_terms (
    term_id INTEGER PRIMARY KEY,
    term TEXT NOT NULL UNIQUE,
    docs INTEGER NOT NULL
);

-- Terms by their trigrams: candidates for a misspelled word are the terms sharing
-- the most trigrams with it.  detail=none: only which term holds a trigram is needed.
CREATE VIRTUAL TABLE search_term_trigrams USING fts5(
    term,
    content = 'search_terms',
    content_rowid = 'term_id',
    tokenize = 'trigram',
    detail = none
);

CREATE TRIGGER search_terms_added AFTER INSERT ON search_terms BEGIN INSERT INTO search_term_trigrams (rowid, term) VALUES (new.term_id, new.term); END;

CREATE TRIGGER search_terms_removed AFTER DELETE ON search_terms BEGIN INSERT INTO search_term_trigrams (search_term_trigrams, rowid, term) VALUES ('delete', old.term_id, old.term); END;

-- What the indexer knows of each room with something indexed (or encrypted).
-- `encrypted`: the room has an m.room.encryption state event, so it is never
-- searched and nothing of it is indexed (spec: "The search will not include rooms
-- that are end to end encrypted"); encryption cannot be switched off.
-- `first_open`: the lowest stream position of an indexed event sent while the
-- room's history visibility was shared or world_readable (NULL: none yet).  Every
-- indexed event before it was sent under joined or invited visibility, so a user
-- cannot see those sent before their first membership event: /search starts a
-- room's scope at the earlier of the two.
-- `docs`: the room's rows in search_events, so /search knows whether the rooms
-- searched are a small part of the index (then it names them in the full-text
-- query).
CREATE TABLE search_rooms (
    room_nid INTEGER PRIMARY KEY,
    encrypted BOOLEAN NOT NULL,
    first_open INTEGER,
    docs INTEGER NOT NULL
);
