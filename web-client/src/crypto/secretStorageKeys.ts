/**
 * The secret-storage key callbacks matrix-js-sdk needs to read and write secrets
 * (cross-signing keys, the key-backup key) in account data.  They must be handed to
 * createClient (`cryptoCallbacks`), so this module owns them and the UI supplies keys:
 * a key just created by "Set up secure backup" is cached here, and a recovery key
 * typed in "Restore from backup" is given with `provideRecoveryKey` before the call
 * that needs it.
 */
import type { CryptoCallbacks } from "matrix-js-sdk/lib/crypto-api/index";
import { decodeRecoveryKey } from "matrix-js-sdk/lib/crypto-api/index";
import type { SecretStorageKeyDescription } from "matrix-js-sdk/lib/secret-storage";

/** Keys known this session, by secret-storage key ID; never persisted. */
const keys = new Map<string, Uint8Array<ArrayBuffer>>();
/** A recovery key the user typed, tried against whichever key ID the SDK asks for. */
let offered: Uint8Array<ArrayBuffer> | null = null;

export const cryptoCallbacks: CryptoCallbacks = {
  async getSecretStorageKey({ keys: wanted }) {
    for (const keyId of Object.keys(wanted)) {
      const key = keys.get(keyId);
      if (key) return [keyId, key];
    }
    const first = Object.keys(wanted)[0];
    if (offered && first) return [first, offered];
    // Nothing to offer: the SDK then reports that secret storage is locked.
    return null;
  },
  cacheSecretStorageKey(keyId: string, _info: SecretStorageKeyDescription, key: Uint8Array<ArrayBuffer>) {
    keys.set(keyId, key);
  },
};

/** Makes the recovery key the user typed available to the SDK; throws when it is malformed. */
export function provideRecoveryKey(recoveryKey: string): void {
  offered = decodeRecoveryKey(recoveryKey.trim());
}

/** Forgets every key (sign out). */
export function forgetSecretStorageKeys(): void {
  keys.clear();
  offered = null;
}
