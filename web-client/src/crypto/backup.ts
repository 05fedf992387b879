/**
 * Secure backup: cross-signing keys and a server-side key backup, both protected by a
 * recovery key in secret storage (spec: client-server-api/modules/secrets.md,
 * end_to_end_encryption.md#server-side-key-backups), and restoring from it.
 */
import type { MatrixClient } from "matrix-js-sdk";
import type { GeneratedSecretStorageKey } from "matrix-js-sdk/lib/crypto-api/index";
import { uiaAuth } from "../auth/uia";
import { provideRecoveryKey } from "./secretStorageKeys";
import { refreshCryptoStatus } from "./status";

function cryptoOf(matrix: MatrixClient) {
  const crypto = matrix.getCrypto();
  if (!crypto) throw new Error("Encryption is starting… try again in a moment.");
  return crypto;
}

/** A new recovery key, to show the user before anything is stored with it. */
export function generateRecoveryKey(matrix: MatrixClient): Promise<GeneratedSecretStorageKey> {
  return cryptoOf(matrix).createRecoveryKeyFromPassphrase();
}

/** Creates cross-signing keys, secret storage with `key`, and a new key backup. */
export async function setUpSecureBackup(matrix: MatrixClient, password: string, key: GeneratedSecretStorageKey): Promise<void> {
  const crypto = cryptoOf(matrix);
  await crypto.bootstrapCrossSigning({ setupNewCrossSigning: true, authUploadDeviceSigningKeys: uiaAuth(matrix, { password }) });
  await crypto.bootstrapSecretStorage({
    createSecretStorageKey: async () => key,
    setupNewSecretStorage: true,
    setupNewKeyBackup: true,
  });
  await crypto.checkKeyBackupAndEnable();
  await refreshCryptoStatus(matrix);
}

export interface RestoreProgress {
  done: number;
  total: number;
}

/**
 * Unlocks secret storage with the recovery key: this session gets the cross-signing
 * keys (so it verifies itself) and the backup key, then imports every backed-up room key.
 */
export async function restoreFromBackup(
  matrix: MatrixClient,
  recoveryKey: string,
  onProgress: (progress: RestoreProgress) => void,
): Promise<{ imported: number; total: number }> {
  const crypto = cryptoOf(matrix);
  provideRecoveryKey(recoveryKey);
  // Reads the cross-signing keys from secret storage and signs this device with them.
  await crypto.bootstrapCrossSigning({});
  await crypto.loadSessionBackupPrivateKeyFromSecretStorage();
  await crypto.checkKeyBackupAndEnable();
  const result = await crypto.restoreKeyBackup({
    progressCallback: (stage) => {
      if (stage.stage === "load_keys") onProgress({ done: stage.successes + stage.failures, total: stage.total });
    },
  });
  await refreshCryptoStatus(matrix);
  return result;
}

/** "ABCD EFGH …": a fingerprint in groups of four, easier to compare aloud. */
export function groupFingerprint(key: string): string {
  return key.replace(/(.{4})(?=.)/g, "$1 ");
}
