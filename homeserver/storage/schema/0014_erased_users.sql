-- Owner: storage.erased_users.
--
-- Accounts deactivated with ``erase: true``
-- (client-server-api/_index.md#post_matrixclientv3accountdeactivate): users who
-- join a room afterwards are served redacted copies of these users' events.
-- Synapse keeps the same list in its ``erased_users`` table.
CREATE TABLE erased_users (
    user_id TEXT PRIMARY KEY
);
