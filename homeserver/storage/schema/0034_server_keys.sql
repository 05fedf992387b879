-- Owner: storage.server_keys.
--
-- Other servers' key responses (spec: server-server-api.md#retrieving-server-keys),
-- one row per key a response lists and per server that gave it to us (the origin
-- itself, or a notary).  The JSON is the signed response exactly as received, so
-- that, acting as a notary, we can serve it again with the origin's signature intact,
-- and so that keys survive restarts.  ts_valid_until_ms is the response's
-- valid_until_ts for current keys, the key's expired_ts for old ones.
CREATE TABLE server_key_responses (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    from_server TEXT NOT NULL,
    ts_added_ms BIGINT NOT NULL,
    ts_valid_until_ms BIGINT NOT NULL,
    -- canonical JSON (UTF-8 text: canonical JSON escapes every control character)
    key_json TEXT NOT NULL,
    PRIMARY KEY (server_name, key_id, from_server)
);
