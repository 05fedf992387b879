-- Owner: storage.remote_device_lists (the first four tables) and
-- storage.device_list_outbound (the last one).
--
-- Device lists over federation (spec: server-server-api.md#device-management).
--
-- Remote users' device lists, cached while we share a room with them and kept
-- current by their server's m.device_list_update EDUs.  A user has a row in
-- remote_device_lists once their list was fetched (GET /user/devices/{userId});
-- ``stale`` marks a list that missed an update (an unknown prev_id) and must be
-- fetched again before it is trusted.
CREATE TABLE remote_device_lists (
    user_id TEXT PRIMARY KEY,
    -- the origin's stream_id the snapshot was taken at
    stream_id BIGINT NOT NULL,
    stale BOOLEAN NOT NULL,
    -- when the list was last fetched or updated (ms)
    updated_ts BIGINT NOT NULL
);
-- The cached devices: one row per device, its DeviceKeys as canonical JSON.
CREATE TABLE remote_devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    display_name TEXT,
    PRIMARY KEY (user_id, device_id)
);
-- The stream_ids of the updates applied since the snapshot: a later update whose
-- prev_id names only these (or the snapshot's) can be applied on top.
CREATE TABLE remote_device_list_updates (
    user_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, stream_id)
);
-- Remote users' master and self-signing keys (``usage``), as canonical JSON.
CREATE TABLE remote_cross_signing_keys (
    user_id TEXT NOT NULL,
    usage TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, usage)
);
-- Per local user, what was last announced to other servers: the last stream_id of
-- their m.device_list_update sequence and a digest per device and per cross-signing
-- key (JSON ``{"devices": {id: digest}, "signing": {usage: digest}}``), so a change
-- is announced as the devices that changed.
CREATE TABLE device_list_outbound (
    user_id TEXT PRIMARY KEY,
    stream_id BIGINT NOT NULL,
    announced TEXT NOT NULL
);
