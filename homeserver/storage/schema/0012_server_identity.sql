-- Owner: storage.server_identity.
--
-- The server name this database belongs to.  User IDs, aliases and signatures in
-- it all carry that name, so the same database must never be served under another.
CREATE TABLE server_identity (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    server_name TEXT NOT NULL
);
