-- Owner: storage.openid_tokens.
--
-- OpenID tokens (homeserver/auth/openid.py): a user proves who they are to a third
-- party, which asks GET /_matrix/federation/v1/openid/userinfo whom a token names.
-- In the database, not in memory, so a token outlives a restart and is known to every
-- process.  Only the token's SHA-256 is kept; expired rows are swept on each issue.
CREATE TABLE openid_tokens (
    -- hex SHA-256 of the token
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    -- when the token stops naming its user (ms)
    expires_ts BIGINT NOT NULL
);

CREATE INDEX openid_tokens_by_user ON openid_tokens (user_id, expires_ts);
CREATE INDEX openid_tokens_by_expiry ON openid_tokens (expires_ts);
