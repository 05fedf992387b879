-- Owner: storage.destinations.
--
-- Other servers we failed to reach and are backing off from (federation/client/
-- backoff.py).  A row exists only while a destination is failing: the first
-- successful request deletes it, so the table holds the servers that are down, not
-- every server we ever talked to.  Kept in the database so a restart does not send
-- a burst of requests to every server that was down.
CREATE TABLE destinations (
    -- the server name, as in a user ID's domain part
    destination TEXT PRIMARY KEY,
    -- when the current run of failures began (ms): how long the server has been down
    failure_ts BIGINT NOT NULL,
    -- when the last failure was recorded (ms)
    retry_last_ts BIGINT NOT NULL,
    -- how long after retry_last_ts to wait before trying again (ms)
    retry_interval BIGINT NOT NULL
);
