-- Owner: storage.e2e_keys.
--
-- End-to-end encryption keys that devices publish (spec:
-- client-server-api/modules/end_to_end_encryption.md, "Device keys", "One-time and
-- fallback keys", POST /keys/upload).  Each key object is kept as the canonical JSON
-- text the device signed, so it is served back byte for byte what was verified.
-- Rows of a device are deleted with the device (storage.devices calls
-- delete_device_keys_txn in its deletion transactions).

-- A device's identity keys: one signed DeviceKeys object per device.
CREATE TABLE e2e_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    added_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Unclaimed one-time keys; a claim deletes the row it hands out.  upload_order
-- numbers a device's uploads so keys are claimed in the order they were uploaded
-- (POST /keys/claim); keys of one upload share a number.
CREATE TABLE e2e_one_time_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    upload_order BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);
-- Claiming the oldest key of an algorithm for a device, and counting a device's keys
-- per algorithm (every /sync), are both range scans of this index.
CREATE INDEX e2e_one_time_keys_claim
    ON e2e_one_time_keys (user_id, device_id, algorithm, upload_order);

-- At most one fallback key per device and algorithm; a new upload replaces it.
-- used: handed out by a claim since it was uploaded (it stays claimable).
CREATE TABLE e2e_fallback_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    used BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm)
);
