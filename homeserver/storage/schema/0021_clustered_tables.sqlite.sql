-- Owner: storage.events (room_memberships), storage.state (state_group_entries).
--
-- Both tables are only ever read by their primary key's prefix.  As ordinary SQLite
-- tables they held every row twice: once in the rowid table, once in the primary
-- key's index (~27 bytes per membership change each).  WITHOUT ROWID stores the rows
-- in the primary key's B-tree itself.  (PostgreSQL has no rowid: nothing to do.)
CREATE TABLE room_memberships_clustered (
    room_nid BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    event_nid BIGINT NOT NULL,
    PRIMARY KEY (room_nid, user_id)
) WITHOUT ROWID;
INSERT INTO room_memberships_clustered (room_nid, user_id, membership, event_nid)
    SELECT room_nid, user_id, membership, event_nid FROM room_memberships;
DROP TABLE room_memberships;
ALTER TABLE room_memberships_clustered RENAME TO room_memberships;
CREATE INDEX room_memberships_by_user ON room_memberships (user_id, membership);

CREATE TABLE state_group_entries_clustered (
    state_group BIGINT NOT NULL,
    state_key_nid BIGINT NOT NULL,
    event_nid BIGINT,
    PRIMARY KEY (state_group, state_key_nid)
) WITHOUT ROWID;
INSERT INTO state_group_entries_clustered (state_group, state_key_nid, event_nid)
    SELECT state_group, state_key_nid, event_nid FROM state_group_entries;
DROP TABLE state_group_entries;
ALTER TABLE state_group_entries_clustered RENAME TO state_group_entries;
