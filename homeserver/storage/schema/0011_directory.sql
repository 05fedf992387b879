-- Owner: storage.directory (room_aliases, published_rooms).
--
-- spec: client-server-api/_index.md#room-aliases, #published-room-directory

-- Local room aliases.  Only aliases on this server's domain are stored here; remote
-- ones are resolved over federation.
CREATE TABLE room_aliases (
    room_alias TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    -- who created the mapping (may delete it whatever their power in the room)
    creator TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);

CREATE INDEX room_aliases_by_room ON room_aliases (room_id);

-- A row per room published in the directory (visibility "public"; no row:
-- "private"), holding the room's summary as of its latest state change so that
-- listing the directory never reads room state.
CREATE TABLE published_rooms (
    room_id TEXT PRIMARY KEY,
    joined_members BIGINT NOT NULL,
    name TEXT,
    topic TEXT,
    avatar_url TEXT,
    canonical_alias TEXT,
    join_rule TEXT NOT NULL,
    history_visibility TEXT NOT NULL,
    guest_access TEXT NOT NULL,
    -- m.room.create's content.type; NULL for plain rooms
    room_type TEXT,
    -- m.room.create's content."m.federate"
    federatable BOOLEAN NOT NULL,
    -- whether the listing shows it (decided by the handler from the summary)
    listed BOOLEAN NOT NULL,
    -- casefolded name, topic and canonical alias, matched by generic_search_term
    search_text TEXT NOT NULL
);

-- The listing's order: most joined members first, then room ID.
CREATE INDEX published_rooms_listing ON published_rooms (joined_members DESC, room_id)
    WHERE listed;
