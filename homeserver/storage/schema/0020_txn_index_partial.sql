-- Owner: storage.events.
--
-- Only events a local client sent with a transaction ID need the idempotency index;
-- every other event (memberships from /join, everything received from other
-- servers) was an entry of NULLs costing ~40 bytes.  The lookup names txn_id, which
-- implies it is not NULL, so both engines still use the index.
DROP INDEX events_by_txn;
CREATE UNIQUE INDEX events_by_txn ON events (sender, txn_device_id, txn_id, room_nid, type)
    WHERE txn_id IS NOT NULL;
