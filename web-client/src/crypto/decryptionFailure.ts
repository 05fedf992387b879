/**
 * Why a message could not be decrypted, in words, and what might help — from
 * matrix-js-sdk's classification of the failure (`MatrixEvent.decryptionFailureReason`).
 */
import { DecryptionFailureCode } from "matrix-js-sdk/lib/crypto-api/index";

export type DecryptionRemedy = "verify" | "restore" | null;

export interface DecryptionExplanation {
  reason: string;
  remedy: DecryptionRemedy;
}

export interface SessionState {
  /** This device is cross-signed by its owner. */
  deviceVerified: boolean;
  /** A key backup exists on the server (whether or not this device can read it). */
  backupExists: boolean;
}

export function explainDecryptionFailure(code: DecryptionFailureCode | null, session: SessionState): DecryptionExplanation {
  const verifyIfUseful: DecryptionRemedy = session.deviceVerified ? null : "verify";
  const restoreIfUseful: DecryptionRemedy = session.backupExists ? "restore" : verifyIfUseful;
  switch (code) {
    case DecryptionFailureCode.HISTORICAL_MESSAGE_USER_NOT_JOINED:
      return { reason: "It was sent before you joined the room.", remedy: null };
    case DecryptionFailureCode.HISTORICAL_MESSAGE_NO_KEY_BACKUP:
      return { reason: "It was sent before this session signed in, and there is no key backup to recover it from.", remedy: null };
    case DecryptionFailureCode.HISTORICAL_MESSAGE_BACKUP_UNCONFIGURED:
      return { reason: "It was sent before this session signed in; its key may be in your key backup.", remedy: "restore" };
    case DecryptionFailureCode.HISTORICAL_MESSAGE_WORKING_BACKUP:
      return { reason: "It was sent before this session signed in, and your key backup does not hold its key.", remedy: null };
    case DecryptionFailureCode.MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE:
      return { reason: "The sender does not share keys with unverified sessions, and this session is not verified.", remedy: "verify" };
    case DecryptionFailureCode.MEGOLM_KEY_WITHHELD:
      return { reason: "The sender's device withheld the key from this session.", remedy: restoreIfUseful };
    case DecryptionFailureCode.MEGOLM_UNKNOWN_INBOUND_SESSION_ID:
      return {
        reason: "The key has not been received yet: waiting for the sender's device — this may take a moment.",
        remedy: restoreIfUseful,
      };
    case DecryptionFailureCode.OLM_UNKNOWN_MESSAGE_INDEX:
      return { reason: "This session received the key only from a later point in the conversation.", remedy: restoreIfUseful };
    case DecryptionFailureCode.SENDER_IDENTITY_PREVIOUSLY_VERIFIED:
      return { reason: "The sender's identity changed since you verified them, so their messages are blocked.", remedy: null };
    case DecryptionFailureCode.UNSIGNED_SENDER_DEVICE:
      return { reason: "The sender's device is not verified by its owner, so its messages are blocked.", remedy: null };
    case DecryptionFailureCode.UNKNOWN_SENDER_DEVICE:
      return { reason: "The sender's device is unknown, so its messages are blocked.", remedy: null };
    default:
      return { reason: "An unexpected error stopped decryption.", remedy: verifyIfUseful };
  }
}
