/**
 * Signing out deletes this device's crypto store: the room keys it holds are gone for
 * good unless a key backup has them (spec: client-server-api/modules/end_to_end_encryption.md#server-side-key-backups).
 * Decides whether the sign-out dialog must warn about that.
 */
import type { MatrixClient } from "matrix-js-sdk";

export interface SignOutRiskInput {
  /** The account is (or was) in at least one encrypted room. */
  hasEncryptedRooms: boolean;
  /** The key backup version this device writes to, or null when none is active. */
  activeBackup: string | null;
  /** Crypto never started on this device: it holds no keys to lose. */
  cryptoRunning: boolean;
}

export function losesEncryptedHistory(input: SignOutRiskInput): boolean {
  return input.cryptoRunning && input.hasEncryptedRooms && !input.activeBackup;
}

export async function readSignOutRisk(matrix: MatrixClient): Promise<SignOutRiskInput> {
  const crypto = matrix.getCrypto();
  const hasEncryptedRooms = matrix.getRooms().some((room) => room.hasEncryptionStateEvent());
  const activeBackup = crypto ? await crypto.getActiveSessionBackupVersion().catch(() => null) : null;
  return { hasEncryptedRooms, activeBackup, cryptoRunning: !!crypto };
}
