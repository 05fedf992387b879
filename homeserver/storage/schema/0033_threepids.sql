-- Owner: storage.threepids.
--
-- Email addresses users proved they own (spec: client-server-api/_index.md,
-- "Adding Account Administrative Contact Information").  One account per address:
-- the spec asks servers to refuse an address another account already has.
CREATE TABLE user_threepids (
    medium TEXT NOT NULL,
    -- lower-cased: addresses are compared case-insensitively
    address TEXT NOT NULL,
    user_id TEXT NOT NULL,
    validated_at BIGINT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (medium, address)
);

CREATE INDEX user_threepids_by_user ON user_threepids (user_id);

-- Validation sessions of requestToken: one per (medium, address, client_secret).
-- Only a hash of the emailed token is kept.
CREATE TABLE threepid_validation_sessions (
    session_id TEXT PRIMARY KEY,
    medium TEXT NOT NULL,
    address TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    last_send_attempt BIGINT NOT NULL,
    next_link TEXT,
    created_ts BIGINT NOT NULL,
    -- the token (and an unvalidated session) is refused after this
    expires_ts BIGINT NOT NULL,
    validated_at BIGINT,
    UNIQUE (medium, address, client_secret)
);
