-- Owners: storage.media (local_media, media_thumbnails, remote_media_cache) and
-- storage.url_previews (url_previews).
--
-- The content repository's metadata; the bytes are in a storage backend
-- (homeserver/media/backends) under keys derived from these rows
-- (homeserver/media/keys.py).  Times are milliseconds.
-- spec: client-server-api/modules/content_repo.md

-- One row per media ID this server minted.  A row made by POST /create has no
-- uploaded_ts (nor size, type, hash) until its bytes arrive with PUT /upload; it is
-- dropped at expires_ts if they never do.
CREATE TABLE local_media (
    media_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    uploaded_ts BIGINT,
    expires_ts BIGINT,
    content_type TEXT,
    upload_name TEXT,
    size BIGINT,
    sha256 TEXT,
    -- Pixel size, for images the thumbnailer could read.
    width INTEGER,
    height INTEGER,
    -- Playing time, for audio and video whose headers say.
    duration_ms BIGINT,
    last_access_ts BIGINT,
    -- The admin who quarantined it: no longer served while set.
    quarantined_by TEXT,
    -- Set for images fetched for a URL preview: owned by the server, not the user
    -- whose request fetched them, so they are not listed as anybody's uploads.
    url_cache TEXT
);
-- A user's media, newest first (admin listing, upload quotas).
CREATE INDEX local_media_by_user ON local_media (user_id, created_ts);
-- Media IDs awaiting their upload (the pending-uploads cap and their expiry).
CREATE INDEX local_media_pending ON local_media (expires_ts) WHERE uploaded_ts IS NULL;

-- Files fetched from other servers, kept as a cache (media_retention).
CREATE TABLE remote_media_cache (
    origin TEXT NOT NULL,
    media_id TEXT NOT NULL,
    content_type TEXT,
    upload_name TEXT,
    size BIGINT NOT NULL,
    sha256 TEXT,
    width INTEGER,
    height INTEGER,
    created_ts BIGINT NOT NULL,
    last_access_ts BIGINT NOT NULL,
    quarantined_by TEXT,
    PRIMARY KEY (origin, media_id)
);
CREATE INDEX remote_media_by_access ON remote_media_cache (last_access_ts);

-- Thumbnails made of local (origin = this server's name) and remote media.
CREATE TABLE media_thumbnails (
    origin TEXT NOT NULL,
    media_id TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    method TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    animated BOOLEAN NOT NULL,
    PRIMARY KEY (origin, media_id, width, height, method, content_type, animated)
);

-- URL previews already made, reused until expires_ts.  A failed fetch is kept too
-- (with its error), so a dead link is not fetched again on every message.
CREATE TABLE url_previews (
    url TEXT NOT NULL PRIMARY KEY,
    fetched_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL,
    -- The preview as JSON (og:* keys), or NULL when the fetch failed.
    preview_json TEXT,
    -- The Matrix error of a failed fetch, as JSON.
    error_json TEXT
);
CREATE INDEX url_previews_by_expiry ON url_previews (expires_ts);
