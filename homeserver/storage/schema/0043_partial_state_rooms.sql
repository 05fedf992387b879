-- Owner: storage.partial_state.
--
-- Rooms joined with partial state ("faster joins", send_join with omit_members):
-- the resident server left out most membership events, and this server is fetching
-- the room's full state in the background.  A row is written before the join is
-- stored and removed in the transaction that completes the state, so a restart
-- resumes the fetch, and every process can tell a partial room from a full one.
CREATE TABLE partial_state_rooms (
    room_id TEXT PRIMARY KEY,
    -- our join event: the full state is fetched as of it
    join_event_id TEXT NOT NULL,
    -- the server the join went through (asked first)
    joined_via TEXT NOT NULL,
    -- JSON list: the servers in the room before the join (send_join's servers_in_room),
    -- who must hear of our events while the member list is incomplete
    servers_in_room TEXT NOT NULL,
    -- when the join was made (ms)
    created_ts BIGINT NOT NULL
);
