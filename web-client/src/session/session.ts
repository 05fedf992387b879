/**
 * The session's life: resumed from localStorage at start (no network needed),
 * begun by a login, ended by "Sign out" or by the server (the token was logged out
 * elsewhere, e.g. "log out everywhere").  Ending it deletes everything this origin
 * keeps about the account: the SDK's sync and crypto stores, our own database and
 * the session itself.  A session runs in one tab at a time (tabLock.ts).
 */
import { signal } from "@preact/signals";
import type { MatrixClient } from "matrix-js-sdk";
import { cryptoDatabasePrefix, getClient, startClient, stopClient, type StoredSession } from "../matrix/client";
import { deleteAppDb } from "../offline/db";
import { getServiceWorkerRegistration } from "../offline/serviceWorker";
import { clearLocalSearchIndex } from "../search/indexer";
import { forgetSecretStorageKeys } from "../crypto/secretStorageKeys";
import { clearMediaCache } from "../media/download";
import { clearSessionStorage, readSession, writeSession } from "./storage";
import { completeSsoLogin, dropSsoLoginToken, pendingSsoLoginToken, ssoStartedHere } from "./login";
import { SessionTabLock, sessionLockName } from "./tabLock";

/** Why the login screen is showing, e.g. "You were signed out".  Written by session/. */
export const signedOutMessage = signal<string | null>(null);

/** The stored session, while another tab runs it (this tab offers "Use here").  Written by session/. */
export const openInOtherTab = signal<StoredSession | null>(null);

const LOGOUT_TIMEOUT_MS = 5000;

/** This tab's hold on the running session. */
let tabLock: SessionTabLock | null = null;

/** Resumes the stored session, or finishes an SSO login this tab started. */
export async function restoreSession(): Promise<void> {
  const loginToken = pendingSsoLoginToken();
  if (loginToken) {
    if (ssoStartedHere() && !readSession()) {
      try {
        await beginSession(await completeSsoLogin(loginToken));
        return;
      } catch (error) {
        signedOutMessage.value = (error as Error).message;
      }
    } else {
      // Not ours to exchange: a login started elsewhere (login CSRF), or a session runs already.
      console.warn("ignoring a loginToken this tab did not ask for");
      dropSsoLoginToken();
    }
  }
  const stored = readSession();
  if (!stored) return;
  try {
    await runSession(stored);
  } catch (error) {
    console.error("the stored session could not be resumed", error);
    signedOutMessage.value = "Your session could not be resumed; please sign in again.";
    await endSession(null);
  }
}

/** Stores a new session and starts its client (the login screen's last step). */
export async function beginSession(session: StoredSession): Promise<void> {
  // The previous session's data may still be being deleted: the new one's must not go with it.
  await ending;
  signedOutMessage.value = null;
  writeSession(session);
  await runSession(session);
}

/** Starts the session's client here, unless another tab runs it (then openInOtherTab says so). */
async function runSession(session: StoredSession): Promise<void> {
  const lock = new SessionTabLock(sessionLockName(session.userId, session.deviceId));
  if (!(await lock.tryAcquire())) {
    openInOtherTab.value = session;
    return;
  }
  await startHolding(lock, session);
}

async function startHolding(lock: SessionTabLock, session: StoredSession): Promise<void> {
  tabLock?.release();
  tabLock = lock;
  openInOtherTab.value = null;
  // Another tab's "Use here": stop (keeping the data, it is theirs now too) and let go.
  lock.whenTakenOver(() => {
    openInOtherTab.value = session; // at once: no login screen while stopping
    void stopClient().finally(() => {
      if (tabLock === lock) tabLock = null;
      lock.release();
    });
  });
  try {
    await startClient(session, onServerLoggedOut);
  } catch (error) {
    lock.release();
    if (tabLock === lock) tabLock = null;
    throw error;
  }
}

/** "Use here": asks the tab running the session to stop, then runs it in this one. */
export async function useSessionHere(): Promise<void> {
  const session = readSession();
  if (!session) {
    // Signed out in the other tab meanwhile.
    openInOtherTab.value = null;
    return;
  }
  const lock = new SessionTabLock(sessionLockName(session.userId, session.deviceId));
  await lock.takeOver();
  await startHolding(lock, session);
}

/** "Sign out": ends the session on the server (POST /logout), then here. */
export async function signOut(): Promise<void> {
  const matrix = getClient();
  if (matrix) {
    try {
      await withTimeout(matrix.logout(true), LOGOUT_TIMEOUT_MS);
    } catch (error) {
      // Offline or the server is gone: the local data goes anyway; the session then
      // stays in the server's list until someone removes it there.
      console.warn("POST /logout failed", error);
    }
  }
  signedOutMessage.value = null;
  await endSession(matrix);
}

let endingAfterServerLogout = false;

/** The server answered 401 M_UNKNOWN_TOKEN: this session was logged out elsewhere. */
async function onServerLoggedOut(): Promise<void> {
  if (endingAfterServerLogout) return;
  endingAfterServerLogout = true;
  try {
    signedOutMessage.value = "You were signed out";
    await endSession(getClient());
  } finally {
    endingAfterServerLogout = false;
  }
}

/** The deletion of the last session's data, which a new session waits for. */
let ending: Promise<void> = Promise.resolve();

function endSession(matrix: MatrixClient | null): Promise<void> {
  ending = ending.then(() => deleteSessionData(matrix)).catch((error) => console.error("could not delete all session data", error));
  return ending;
}

async function deleteSessionData(matrix: MatrixClient | null): Promise<void> {
  const userId = matrix?.getUserId() ?? readSession()?.userId ?? null;
  await stopClient();
  tabLock?.release();
  tabLock = null;
  clearSessionStorage(userId);
  forgetSecretStorageKeys();
  clearMediaCache();
  await Promise.allSettled([
    matrix?.clearStores({ cryptoDatabasePrefix: cryptoDatabasePrefix() }),
    deleteAppDb(),
    clearLocalSearchIndex(),
    unsubscribeWebPush(),
  ]);
  await deleteOtherDatabases();
}

/**
 * The browser's push subscription goes with the session: the next account signed in
 * here must not receive (or be woken by) the last one's pushes.
 */
async function unsubscribeWebPush(): Promise<void> {
  if (typeof navigator === "undefined" || !("serviceWorker" in navigator)) return;
  const registration = await getServiceWorkerRegistration();
  await (await registration?.pushManager?.getSubscription())?.unsubscribe();
}

/** Any other database of this origin (the search index...) belongs to the account too. */
async function deleteOtherDatabases(): Promise<void> {
  const factory = globalThis.indexedDB;
  if (!factory?.databases) return;
  try {
    const databases = await factory.databases();
    await Promise.all(
      databases.map(
        ({ name }) =>
          name &&
          new Promise<void>((resolve) => {
            const request = factory.deleteDatabase(name);
            request.onsuccess = request.onerror = request.onblocked = () => resolve();
          }),
      ),
    );
  } catch (error) {
    console.warn("could not list the IndexedDB databases to delete", error);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error("timed out")), ms))]);
}
