-- Owner: storage.presence.
--
-- Each local user's latest presence, one row per user updated in place.  The live
-- state is held by the presence handler and written here in batches (every few
-- seconds and at shutdown) so that a restart keeps status messages and "last seen"
-- (last_active_ts); a crash loses at most the last few seconds of changes, which
-- the next sync or heartbeat restores.  Times are milliseconds.
-- spec: client-server-api/modules/presence.md
CREATE TABLE presence (
    user_id TEXT NOT NULL PRIMARY KEY,
    state TEXT NOT NULL,
    status_msg TEXT,
    last_active_ts BIGINT NOT NULL,
    last_user_sync_ts BIGINT NOT NULL,
    currently_active BOOLEAN NOT NULL
);
