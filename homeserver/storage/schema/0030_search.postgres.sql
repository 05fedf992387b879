-- Owner: storage.search.
--
-- The message search index (docs/search.md), filled by the search indexer from the
-- events stream.  One row per indexed event (m.room.message body, m.room.name name,
-- m.room.topic topic), keyed by its stream position, so the row joins
-- events.stream_ordering for room, sender, type and time.  `vector` is built from
-- the words search.text made (a tsvector literal: no text search configuration
-- decides what a word is), so the index holds exactly the terms search_terms names,
-- plus one lexeme naming the room ('!' and the room's NID: no word holds a '!'),
-- so a search in a few rooms intersects their posting lists with the words'.
CREATE TABLE search_events (
    stream_ordering BIGINT PRIMARY KEY,
    -- bit 0: content.url is a string; bits 1-3: media kind (1 image, 2 audio,
    -- 3 video, 4 file)
    flags SMALLINT NOT NULL,
    vector TSVECTOR NOT NULL
);

CREATE INDEX search_events_vector ON search_events USING GIN (vector);

-- pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The vocabulary: every indexed word and how many indexed events hold it, for
-- fuzzy matching.  "C" collation: ranges over terms (same first letters) are code
-- point ranges whatever the database's collation.
CREATE TABLE search_terms (
    term TEXT COLLATE "C" PRIMARY KEY,
    docs INTEGER NOT NULL
);

CREATE INDEX search_terms_trigrams ON search_terms USING GIN (term gin_trgm_ops);

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
    room_nid BIGINT PRIMARY KEY,
    encrypted BOOLEAN NOT NULL,
    first_open BIGINT,
    docs BIGINT NOT NULL
);
