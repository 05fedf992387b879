-- Owner: storage.user_directory (user_directory, user_directory_words,
-- user_directory_vocabulary, user_directory_public_rooms, user_directory_progress),
-- plus two indexes on storage.users's table that only the directory reads:
-- users_by_created_ts
-- (accounts registered since it last looked) and users_deactivated (candidates are
-- checked against it; few rows).
--
-- One row per user, never one per pair of users: who may see whom is decided when
-- searching, from room_memberships.  See docs/user-directory.md.
--
-- pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
--
-- spec: client-server-api/_index.md#post_matrixclientv3user_directorysearch

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE user_directory (
    user_id TEXT PRIMARY KEY,
    display_name TEXT,
    avatar_url TEXT,
    is_local BOOLEAN NOT NULL,
    -- normalised (userdir/text.py) display name ('' without one) and localpart
    name_key TEXT NOT NULL,
    localpart_key TEXT NOT NULL,
    -- normalised display name and localpart (not the server name, which every
    -- local user shares): what substrings are searched in
    search_text TEXT NOT NULL,
    -- normalised user ID: matched exactly or as a prefix ("@alice:exa")
    user_id_key TEXT COLLATE "C" NOT NULL
);

-- Substring search (LIKE '%term%') over trigrams.
CREATE INDEX user_directory_search ON user_directory USING gin (search_text gin_trgm_ops);

CREATE INDEX user_directory_by_user_id_key ON user_directory (user_id_key);

-- Words of display names and localparts: prefixes shorter than a trigram, and the
-- candidates for typo tolerance.  Byte order, so a prefix is a range whatever the
-- database's collation.
CREATE TABLE user_directory_words (
    word TEXT COLLATE "C" NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (word, user_id)
);

CREATE INDEX user_directory_words_by_user ON user_directory_words (user_id);

-- The distinct words of user_directory_words, with their length: the candidates
-- for a misspelt query word are read by first letter(s) and length, one index
-- range per length, however many users share a word.
CREATE TABLE user_directory_vocabulary (
    word TEXT COLLATE "C" PRIMARY KEY,
    length INTEGER NOT NULL
);

CREATE INDEX user_directory_vocabulary_by_length ON user_directory_vocabulary (length, word);

-- Rooms whose members anyone may find: join rule "public" or history visibility
-- "world_readable" in the current state.
CREATE TABLE user_directory_public_rooms (
    room_nid BIGINT PRIMARY KEY
);

-- Accounts created at or after this (less a margin) may not be indexed yet.
CREATE TABLE user_directory_progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    users_created_ts BIGINT NOT NULL
);

INSERT INTO user_directory_progress (id, users_created_ts) VALUES (1, 0);

CREATE INDEX users_by_created_ts ON users (created_ts);

CREATE INDEX users_deactivated ON users (user_id) WHERE deactivated;
