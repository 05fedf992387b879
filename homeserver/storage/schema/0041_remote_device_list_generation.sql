-- Owner: storage.remote_device_lists.
--
-- Bumped each time a remote user's cached list is marked stale.  A fetch of the
-- whole list (GET /user/devices) reads it before asking and clears ``stale`` only
-- if it has not moved: an update that went stale while the request was in flight
-- (and may be newer than the answer) keeps the list stale, to be fetched again.
ALTER TABLE remote_device_lists ADD COLUMN stale_generation BIGINT NOT NULL DEFAULT 0;
