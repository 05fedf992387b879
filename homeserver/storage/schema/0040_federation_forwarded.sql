-- Owner: storage.federation_outbound.
-- federation_forwarded_events: remote membership events (joins, leaves, knocks) that
-- a remote server made through us with send_join/send_leave/send_knock, which we must
-- pass on to the room's other servers as if they were ours (except back to
-- `origin`).  Written before the event is persisted, so the sender's stream consumer
-- finds it even after a restart; catch-up reads it too.
-- spec: server-server-api.md#joining-rooms ("The resident server will then send the
-- event to other servers in the room")
CREATE TABLE federation_forwarded_events (
    event_id TEXT NOT NULL PRIMARY KEY,
    origin TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
