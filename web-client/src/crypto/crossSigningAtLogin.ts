/**
 * Verifying people needs a cross-signing identity (spec: client-server-api/modules/end_to_end_encryption.md#cross-signing).
 * Right after a password sign-in the app holds the password that uploading the keys
 * needs (user-interactive auth), so an account without cross-signing keys gets them
 * then, signing this device.  Secret storage and the key backup stay in "Set up
 * secure backup".  Never prompts: if the server wants more than the password, the
 * identity is left for "Set up secure backup".
 */
import { effect } from "@preact/signals";
import type { MatrixClient } from "matrix-js-sdk";
import { client } from "../state/app";
import { cryptoStartup } from "../matrix/client";
import { uiaAuth, type UiaHandlers } from "../auth/uia";
import { refreshCryptoStatus } from "./status";

const NEVER_ASK: UiaHandlers = {
  askPassword: async () => null,
  completeInFallback: async () => false,
};

/** What the decision needs of the client (a fake one in tests). */
export type CrossSigningClient = Pick<MatrixClient, "getCrypto" | "getUserId">;

/** Creates the cross-signing keys when the account has none; answers whether it did. */
export async function bootstrapCrossSigningIfMissing(matrix: CrossSigningClient, password: string, uia = uiaAuth<void>(matrix as MatrixClient, { password, handlers: NEVER_ASK })): Promise<boolean> {
  const crypto = matrix.getCrypto();
  const userId = matrix.getUserId();
  if (!crypto || !userId) return false;
  // Asks the server, not the local cache: another device may have created them.
  if (await crypto.userHasCrossSigningKeys(userId, true)) return false;
  await crypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: uia });
  return true;
}

/** Called by the login screen after a password sign-in: waits for crypto, then bootstraps. */
export async function setUpCrossSigningAfterLogin(password: string): Promise<void> {
  const matrix = await whenCryptoSettled();
  if (!matrix) return;
  try {
    if (await bootstrapCrossSigningIfMissing(matrix, password)) await refreshCryptoStatus(matrix);
  } catch (error) {
    console.warn("crypto: could not create cross-signing keys at sign-in", error);
  }
}

/** The client once crypto has started (null if it failed or the user signed out meanwhile). */
function whenCryptoSettled(): Promise<MatrixClient | null> {
  return new Promise((resolve) => {
    const stop = effect(() => {
      const matrix = client.value;
      const state = cryptoStartup.value.state;
      if (state === "starting" && matrix) return;
      queueMicrotask(() => stop());
      resolve(state === "ready" && matrix ? matrix : null);
    });
  });
}
