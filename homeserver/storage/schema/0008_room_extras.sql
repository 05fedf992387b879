-- Owner: storage.events (redactions, event_relations) and storage.rooms
-- (room_forgets).

-- Which events a redaction event targets.  Kept apart from the events table because
-- the target may arrive after its redaction (over federation), and serving an event
-- needs "is it redacted" in one indexed lookup.
CREATE TABLE redactions (
    redacts_event_id TEXT NOT NULL,
    redaction_event_nid BIGINT NOT NULL,
    PRIMARY KEY (redacts_event_id, redaction_event_nid)
);

-- m.relates_to of every event that has one: edits, reactions, replies in threads,
-- references.  spec: client-server-api/_index.md#forming-relationships-between-events
CREATE TABLE event_relations (
    event_nid BIGINT PRIMARY KEY,
    room_nid BIGINT NOT NULL,
    relates_to_id TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    -- the reaction key of m.annotation
    aggregation_key TEXT
);

CREATE INDEX event_relations_by_parent ON event_relations (relates_to_id, rel_type);
CREATE INDEX event_relations_threads ON event_relations (room_nid, rel_type, relates_to_id);

-- A user forgot a room they had left: its history is hidden from them until they
-- join again (a later membership event than the one they forgot at).
CREATE TABLE room_forgets (
    user_id TEXT NOT NULL,
    room_nid BIGINT NOT NULL,
    membership_event_nid BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_nid)
);

-- For a state event, the event it replaced in the room state (clients see it as
-- unsigned.replaces_state / prev_content without the server reading whole states).
ALTER TABLE events ADD COLUMN replaces_state TEXT;

-- "Which of this user's memberships changed since position X" (incremental /sync).
CREATE INDEX events_memberships_by_target ON events (state_key, stream_ordering)
    WHERE type = 'm.room.member';

-- /timestamp_to_event
CREATE INDEX events_by_room_ts ON events (room_nid, origin_server_ts);

-- A transaction ID is scoped to the device and the request path (room and event
-- type), not just the device.  spec: client-server-api/_index.md#transaction-identifiers
DROP INDEX events_by_txn;
CREATE UNIQUE INDEX events_by_txn ON events (sender, txn_device_id, txn_id, room_nid, type);
