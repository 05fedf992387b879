-- Owner: storage.events (rooms, events, event_edges, event_auth_edges,
-- forward_extremities, room_memberships) and storage.state (state_keys,
-- state_groups, state_group_entries).
--
-- Rooms, events and (type, state_key) pairs get compact integer ids ("nids") so
-- that state is stored as small integer rows, never as copies of event IDs.

CREATE TABLE rooms (
    room_nid BIGINT PRIMARY KEY,
    room_id TEXT NOT NULL UNIQUE,
    room_version TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    -- the state after the forward extremities: the room's current state
    current_state_group BIGINT
);

CREATE TABLE events (
    event_nid BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_nid BIGINT NOT NULL,
    type TEXT NOT NULL,
    -- NULL for non-state events
    state_key TEXT,
    sender TEXT NOT NULL,
    depth BIGINT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    -- position in the events stream; NULL for outliers, which clients never see
    stream_ordering BIGINT UNIQUE,
    outlier BOOLEAN NOT NULL,
    rejected_reason TEXT,
    soft_failed BOOLEAN NOT NULL,
    -- the room state before and after this event (equal unless it changed state)
    state_group_before BIGINT,
    state_group_after BIGINT,
    -- the local sender's device and transaction, for idempotent /send
    txn_device_id TEXT,
    txn_id TEXT,
    -- the PDU as canonical JSON, byte for byte what was hashed and signed
    json TEXT NOT NULL
);

CREATE INDEX events_by_room_stream ON events (room_nid, stream_ordering);
CREATE UNIQUE INDEX events_by_txn ON events (sender, txn_device_id, txn_id);

CREATE TABLE event_edges (
    event_nid BIGINT NOT NULL,
    prev_event_id TEXT NOT NULL,
    PRIMARY KEY (event_nid, prev_event_id)
);

CREATE INDEX event_edges_by_prev ON event_edges (prev_event_id);

CREATE TABLE event_auth_edges (
    event_nid BIGINT NOT NULL,
    auth_event_id TEXT NOT NULL,
    PRIMARY KEY (event_nid, auth_event_id)
);

CREATE TABLE forward_extremities (
    room_nid BIGINT NOT NULL,
    event_nid BIGINT NOT NULL,
    PRIMARY KEY (room_nid, event_nid)
);

-- Each user's latest membership per room, from the current state: answers "which
-- rooms is this user in" and "who is in this room" without reading state groups.
CREATE TABLE room_memberships (
    room_nid BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    event_nid BIGINT NOT NULL,
    PRIMARY KEY (room_nid, user_id)
);

CREATE INDEX room_memberships_by_user ON room_memberships (user_id, membership);

CREATE TABLE state_keys (
    state_key_nid BIGINT PRIMARY KEY,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    UNIQUE (type, state_key)
);

-- A state group is either a snapshot (prev_state_group NULL: its entries are the
-- whole state) or a delta on prev_state_group (its entries replace, and entries
-- with a NULL event_nid remove).  Chains are cut by a snapshot every so often so a
-- read walks a bounded number of groups.
CREATE TABLE state_groups (
    state_group BIGINT PRIMARY KEY,
    room_nid BIGINT NOT NULL,
    prev_state_group BIGINT,
    chain_length INTEGER NOT NULL
);

CREATE TABLE state_group_entries (
    state_group BIGINT NOT NULL,
    state_key_nid BIGINT NOT NULL,
    event_nid BIGINT,
    PRIMARY KEY (state_group, state_key_nid)
);
