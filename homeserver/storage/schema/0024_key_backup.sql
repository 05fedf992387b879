-- Owner: storage.key_backup.
--
-- Server-side key backups: each user's backup versions and the encrypted room keys
-- in them.  The server never sees a key: session_data and auth_data are opaque JSON
-- (compact text) that it stores and returns.
-- spec: client-server-api/modules/end_to_end_encryption.md#server-side-key-backups

-- One row per backup version a user ever created.  Versions are numbered per user
-- (1, 2, ...) and sent as strings.  A deleted version keeps its row, emptied
-- (deleted = TRUE, auth_data '{}', key_count 0, no keys), so that its number is
-- never handed out again and deleting it twice succeeds, as the spec asks.
-- etag counts the changes to the version's keys; key_count is kept with every
-- change so GET .../version answers "count" without counting the keys.
-- The primary key serves every query: one version, the newest undeleted version
-- (ORDER BY version DESC within the user) and the next number (MAX within the user).
CREATE TABLE room_key_backup_versions (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    auth_data TEXT NOT NULL,
    etag BIGINT NOT NULL,
    key_count BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, version)
);

-- The backed-up key of each (room, session) in a version.  Every read and delete is
-- by a prefix of the primary key (the version; a room in it; one session), so it
-- needs no other index.
CREATE TABLE room_key_backup_keys (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    first_message_index BIGINT NOT NULL,
    forwarded_count BIGINT NOT NULL,
    is_verified BOOLEAN NOT NULL,
    session_data TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id)
);
