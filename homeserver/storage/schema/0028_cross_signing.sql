-- Owner: storage.cross_signing.
--
-- Cross-signing (spec: client-server-api/modules/end_to_end_encryption.md,
-- "Cross-signing", POST /keys/device_signing/upload, POST /keys/signatures/upload).
-- Key objects are kept as the canonical JSON text the handler verified, so they are
-- served back byte for byte what was signed.

-- A user's current cross-signing keys, one per usage ('master', 'self_signing',
-- 'user_signing').  key_id is the unpadded-base64 Ed25519 public key (the key's ID
-- without its 'ed25519:' prefix).  A new master key replaces the row and drops the
-- self-signing and user-signing rows it does not come with (they were signed by the
-- old master key, so they no longer chain to the user's identity).
CREATE TABLE e2e_cross_signing_keys (
    user_id TEXT NOT NULL,
    key_usage TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    added_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, key_usage)
);

-- Signatures uploaded with POST /keys/signatures/upload, merged into the signed
-- object's 'signatures' when it is served by /keys/query.
--   target_key_id: a device ID, or a master key's public key.
--   target_ed25519: the Ed25519 public key of the object that was signed (the
--     device's 'ed25519:<device_id>' key, or the master public key itself): a
--     signature is served only while the target still has that key, so a device
--     deleted and re-created under the same ID never shows its predecessor's
--     signatures (signature rows are not deleted with the device).
--   signer_key_id: 'ed25519:<public key or device ID>' as in 'signatures'.
CREATE TABLE e2e_cross_signing_signatures (
    target_user_id TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    signer_user_id TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,
    target_ed25519 TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);
-- Dropping the signatures a replaced self-signing or user-signing key made, and a
-- deactivated user's signatures of others.
CREATE INDEX e2e_cross_signing_signatures_signer
    ON e2e_cross_signing_signatures (signer_user_id, signer_key_id);
