-- Owner: storage.engines.  SQLite's stand-in for PostgreSQL sequences
-- (Engine.next_id); PostgreSQL uses real sequences and leaves this table empty.
CREATE TABLE id_sequences (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
