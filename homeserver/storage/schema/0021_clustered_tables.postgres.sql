-- Owner: storage.events, storage.state.  SQLite-only change (WITHOUT ROWID tables);
-- PostgreSQL has no rowid, so there is nothing to do here.
SELECT 1;
