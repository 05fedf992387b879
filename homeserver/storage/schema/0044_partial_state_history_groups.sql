-- Owner: storage.state.
--
-- State groups written for history backfilled into a room while its state is
-- partial.  They come from full states other servers gave for events before our
-- join, so completing the room's state (storage.partial_state) must leave their
-- snapshots alone: a member who joined later does not belong in them.  The rows of
-- a room go when its state is completed; ones left by a room we left while partial
-- stay true of their groups.
CREATE TABLE partial_state_history_groups (
    state_group BIGINT PRIMARY KEY,
    room_nid BIGINT NOT NULL
);

CREATE INDEX partial_state_history_groups_room ON partial_state_history_groups (room_nid);
