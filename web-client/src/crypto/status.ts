/**
 * This session's encryption status, read from matrix-js-sdk's CryptoApi and kept
 * fresh on its events, for the settings section and the undecryptable-message notice.
 */
import { signal } from "@preact/signals";
import type { MatrixClient } from "matrix-js-sdk";
import { CryptoEvent } from "matrix-js-sdk/lib/crypto-api/index";

export interface CryptoStatus {
  deviceId: string;
  ed25519: string;
  /** Cross-signing keys exist and this device holds what it needs to use them. */
  crossSigningReady: boolean;
  /** This device is cross-signed by its owner's identity. */
  deviceVerified: boolean;
  /** Secret storage holds the cross-signing and backup keys. */
  secretStorageReady: boolean;
  /** The server's current key backup version, or null when there is none. */
  backupOnServer: string | null;
  /** The backup version this device writes its keys to, or null. */
  activeBackup: string | null;
}

/** null until crypto has started and been read once. */
export const cryptoStatus = signal<CryptoStatus | null>(null);

let refreshing: Promise<void> | null = null;
let again = false;

export function refreshCryptoStatus(matrix: MatrixClient): Promise<void> {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = readStatus(matrix)
    .then((status) => {
      if (status) cryptoStatus.value = status;
    })
    .catch((error) => console.warn("crypto: could not read the encryption status", error))
    .finally(() => {
      refreshing = null;
      if (again) {
        again = false;
        void refreshCryptoStatus(matrix);
      }
    });
  return refreshing;
}

async function readStatus(matrix: MatrixClient): Promise<CryptoStatus | null> {
  const crypto = matrix.getCrypto();
  const userId = matrix.getUserId();
  const deviceId = matrix.getDeviceId();
  if (!crypto || !userId || !deviceId) return null;
  const [keys, crossSigningReady, verification, secretStorageReady, backupInfo, activeBackup] = await Promise.all([
    crypto.getOwnDeviceKeys(),
    crypto.isCrossSigningReady(),
    crypto.getDeviceVerificationStatus(userId, deviceId),
    crypto.isSecretStorageReady(),
    crypto.getKeyBackupInfo().catch(() => null),
    crypto.getActiveSessionBackupVersion(),
  ]);
  return {
    deviceId,
    ed25519: keys.ed25519,
    crossSigningReady,
    deviceVerified: verification?.crossSigningVerified ?? false,
    secretStorageReady,
    backupOnServer: backupInfo?.version ?? null,
    activeBackup,
  };
}

/** Re-reads the status on the SDK's crypto events, and until crypto has started. */
export function watchCryptoStatus(matrix: MatrixClient): () => void {
  const refresh = () => void refreshCryptoStatus(matrix);
  const events = [
    CryptoEvent.KeyBackupStatus,
    CryptoEvent.KeyBackupDecryptionKeyCached,
    CryptoEvent.UserTrustStatusChanged,
    CryptoEvent.KeysChanged,
    CryptoEvent.DevicesUpdated,
  ];
  const emitter = matrix as unknown as { on(e: string, l: () => void): void; off(e: string, l: () => void): void };
  for (const event of events) emitter.on(event, refresh);
  // Crypto starts after the client (initRustCrypto is not awaited by the screens):
  // poll until it is there, then rely on the events.
  const poll = setInterval(() => {
    if (matrix.getCrypto()) {
      clearInterval(poll);
      refresh();
    }
  }, 500);
  refresh();
  return () => {
    clearInterval(poll);
    for (const event of events) emitter.off(event, refresh);
    cryptoStatus.value = null;
  };
}
