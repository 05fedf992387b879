-- Owners: storage.profiles (profiles), storage.registration_tokens (registration_tokens),
-- storage.refresh_tokens (refresh_tokens), storage.login_tokens (login_tokens),
-- storage.devices (the new access_tokens columns), storage.users (the index).
CREATE TABLE profiles (
    user_id TEXT PRIMARY KEY,
    displayname TEXT,
    avatar_url TEXT
);

-- Synapse's registration token model, so its admin API means the same here.
CREATE TABLE registration_tokens (
    token TEXT PRIMARY KEY,
    -- NULL: unlimited
    uses_allowed INTEGER,
    -- registrations that passed the token stage but have not finished yet
    pending INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    -- milliseconds since the epoch; NULL: never expires
    expiry_time BIGINT
);

CREATE TABLE refresh_tokens (
    id BIGINT PRIMARY KEY,
    -- hex SHA-256 of the token, as for access tokens
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    -- the refresh token that replaced this one; this one is revoked once that is used
    next_token_id BIGINT
);

CREATE INDEX refresh_tokens_by_user_device ON refresh_tokens (user_id, device_id);
CREATE INDEX refresh_tokens_by_next ON refresh_tokens (next_token_id);

-- Short-lived, single-use tokens for m.login.token (POST /login/get_token).
CREATE TABLE login_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_ts BIGINT NOT NULL
);

CREATE INDEX login_tokens_by_expiry ON login_tokens (expires_ts);

-- The refresh token an access token was issued with, and whether it has been used
-- (its first use revokes the refresh token it replaced).
ALTER TABLE access_tokens ADD COLUMN refresh_token_id BIGINT;
ALTER TABLE access_tokens ADD COLUMN used BOOLEAN NOT NULL DEFAULT FALSE;

CREATE INDEX access_tokens_by_refresh_token ON access_tokens (refresh_token_id);

-- Login looks users up case-insensitively.
CREATE INDEX users_by_lower_user_id ON users (lower(user_id));
