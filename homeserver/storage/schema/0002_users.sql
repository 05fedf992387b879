-- Owner: storage.users (users) and storage.devices (devices, access_tokens).
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    -- bcrypt hash, in the same format as Synapse's users.password_hash; NULL: no password login
    password_hash TEXT,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    -- NULL for ordinary users; 'bot' or 'support' as in Synapse
    user_type TEXT,
    created_ts BIGINT NOT NULL,
    deactivated BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    created_ts BIGINT NOT NULL,
    last_seen_ts BIGINT,
    last_seen_ip TEXT,
    last_seen_user_agent TEXT,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE access_tokens (
    id BIGINT PRIMARY KEY,
    -- hex SHA-256 of the token: the token itself is never stored
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    device_id TEXT,
    created_ts BIGINT NOT NULL,
    -- NULL: does not expire
    expires_ts BIGINT
);

CREATE INDEX access_tokens_by_user_device ON access_tokens (user_id, device_id);
