-- Owner: storage.state.
--
-- Snapshots are taken by accumulated delta size instead of every 50 groups: a
-- chain is cut once the delta entries written along it since its snapshot
-- (chain_rows) outweigh the snapshot itself (snapshot_rows), so a large room is
-- rewritten rarely and a read still touches at most about twice its state.
-- Groups written before this migration count as zero; their chains are cut by the
-- new rule as they grow.
ALTER TABLE state_groups ADD COLUMN chain_rows BIGINT NOT NULL DEFAULT 0;
ALTER TABLE state_groups ADD COLUMN snapshot_rows BIGINT NOT NULL DEFAULT 0;
