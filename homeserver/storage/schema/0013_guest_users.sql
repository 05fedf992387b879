-- Owner: storage.users.
--
-- Guest accounts (client-server-api/modules/guest_access.md): registered with
-- ?kind=guest, limited to the endpoints the spec lists for guests, and turned into
-- ordinary accounts when upgraded.  Synapse keeps the same flag on ``users``.
ALTER TABLE users ADD COLUMN is_guest BOOLEAN NOT NULL DEFAULT FALSE;
