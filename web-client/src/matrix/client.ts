/**
 * The signed-in MatrixClient: created from a stored session, with its sync data in
 * IndexedDB (so rooms and recent history show after an offline reload), Rust
 * crypto, the WebSocket stream when the server offers it, and the server's
 * features discovered in the background.
 */
import { signal } from "@preact/signals";
import {
  ClientEvent,
  HttpApiEvent,
  IndexedDBStore,
  MatrixScheduler,
  PendingEventOrdering,
  SyncState,
  createClient,
  type MatrixClient,
  type MatrixError,
} from "matrix-js-sdk";
import { client, syncState } from "../state/app";
import { NO_FEATURES, features, type ServerFeatures, type SsoProvider } from "../state/features";
import { watchClient } from "./events";
import { startSyncSaver } from "./syncSaver";
import { createStreamFetch, type StreamFetch } from "./streamFetch";
import { startOutbox, stopOutbox } from "../offline/outbox";
import { startConnectivity } from "../offline/connectivity";
import { startNotifications } from "../notify";
import { cryptoCallbacks } from "../crypto/secretStorageKeys";
import { startLocalSearchIndex } from "../search/indexer";
import { scopedDbName, setDatabaseScope } from "../session/dbNames";

export interface StoredSession {
  baseUrl: string;
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** The SDK's sync store (IndexedDB database "matrix-js-sdk:hs-sync:<user>/<device>"). */
const SYNC_STORE_NAME = "hs-sync";
/** The Rust crypto store's database prefix (the SDK's default is "matrix-js-sdk"). */
const CRYPTO_STORE_PREFIX = "matrix-js-sdk";
const FEATURES_KEY = "hs.features";
/** After this long without crypto a warning is logged (the sync keeps waiting for it). */
const CRYPTO_SLOW_MS = 20_000;
/** How long the first sync waits for the server's features. */
const FEATURES_WAIT_MS = 3000;
/** How often the sync data is written to IndexedDB while syncing (see syncSaver.ts). */
const SAVE_DELAY_MS = 30_000;

/**
 * How the start of end-to-end encryption went: "starting", "ready", or why it is
 * unavailable (then only unencrypted rooms work).  Written here only.
 */
export const cryptoStartup = signal<{ state: "starting" | "ready" | "unavailable"; error?: string }>({ state: "starting" });

/** The crypto store's prefix for the signed-in session (sign-out clears it with clearStores). */
export function cryptoDatabasePrefix(): string {
  return scopedDbName(CRYPTO_STORE_PREFIX);
}

let current: { matrix: MatrixClient; stream: StreamFetch; stop: () => void } | null = null;

export function getClient(): MatrixClient | null {
  return current?.matrix ?? null;
}

/** Tells the stream that the user did something (its next ping counts as presence activity). */
export function noteUserActivity(): void {
  current?.stream.noteActivity();
}

/**
 * Creates the client for a stored session and publishes it in `client`; crypto and
 * the sync loop start in the background (the rooms come from the sync store
 * first, then from the server).  Needs no network: the sync
 * store and the crypto store are local, and what the server offers comes from the
 * last discovery until a fresh one answers.  `onLoggedOut` is called when the
 * server says the access token is no longer valid.
 */
export async function startClient(session: StoredSession, onLoggedOut: (error: MatrixError) => void): Promise<MatrixClient> {
  await stopClient();
  // Every database below belongs to this user and device only.
  setDatabaseScope(session.userId, session.deviceId);
  const cached = loadCachedFeatures(session.baseUrl);
  features.value = cached ?? NO_FEATURES;

  const store = new IndexedDBStore({ indexedDB: globalThis.indexedDB, localStorage: globalThis.localStorage, dbName: scopedDbName(SYNC_STORE_NAME) });

  const stream = createStreamFetch({ isOffered: () => features.value.websocketStream });
  const matrix = createClient({
    baseUrl: session.baseUrl,
    userId: session.userId,
    deviceId: session.deviceId,
    accessToken: session.accessToken,
    store,
    fetchFn: stream.fetchFn,
    timelineSupport: true,
    cryptoCallbacks, // secret storage: set up / restore secure backup (crypto/secretStorageKeys.ts)
    // The outbox (offline/outbox.ts) orders and retries sends itself; the SDK's
    // scheduler would queue all rooms behind one another and retry on its own.
    scheduler: new MatrixScheduler(() => -1, () => null),
  });

  try {
    // After createClient: the store needs its client to start.
    await store.startup();
  } catch (error) {
    console.error("the sync store could not be opened; starting from the server", error);
  }

  const saver = startSyncSaver(() => store.save(true), SAVE_DELAY_MS);
  matrix.on(ClientEvent.Sync, (state) => {
    syncState.value = state;
    if (state === SyncState.Syncing) saver.synced();
  });
  matrix.on(HttpApiEvent.SessionLoggedOut, (error) => onLoggedOut(error));
  const unwatch = watchClient(matrix);
  const stopConnectivity = startConnectivity(matrix);
  const stopNotifications = startNotifications(matrix);
  const stopSearchIndex = startLocalSearchIndex(matrix);
  const onActivity = () => stream.noteActivity();
  for (const type of ["keydown", "pointerdown", "focus"]) window.addEventListener(type, onActivity, { passive: true });

  current = {
    matrix,
    stream,
    stop: () => {
      for (const type of ["keydown", "pointerdown", "focus"]) window.removeEventListener(type, onActivity);
      saver.stop();
      unwatch();
      stopConnectivity();
      stopNotifications();
      stopSearchIndex();
      stream.close();
    },
  };
  // The outbox sends only once the rooms are known (the first sync, from the store or
  // the server), which startSyncing begins only after crypto has started or failed.
  void startOutbox(matrix, firstSync(matrix)).catch((error) => console.error("the outbox could not be loaded", error));
  client.value = matrix;
  const discovery = refreshFeatures(matrix, session.baseUrl);

  void startSyncing(matrix, cached ? Promise.resolve() : discovery);
  return matrix;
}

/** Settles at the client's first PREPARED (or later) sync state. */
function firstSync(matrix: MatrixClient): Promise<void> {
  return new Promise((resolve) => {
    const onSync = (state: SyncState) => {
      if (state !== SyncState.Prepared && state !== SyncState.Syncing) return;
      matrix.off(ClientEvent.Sync, onSync);
      resolve();
    };
    matrix.on(ClientEvent.Sync, onSync);
  });
}

async function startSyncing(matrix: MatrixClient, discovery: Promise<void>): Promise<void> {
  // Whether to sync over the stream is decided per request, but the first requests
  // should already know: a first start (nothing cached) waits briefly for discovery.
  await Promise.all([startCrypto(matrix), Promise.race([discovery, new Promise((resolve) => setTimeout(resolve, FEATURES_WAIT_MS))])]);
  if (current?.matrix !== matrix) return; // signed out meanwhile
  try {
    await matrix.startClient({
      // Local echoes stay in room.getPendingEvents() until the server has them.
      pendingEventOrdering: PendingEventOrdering.Detached,
      lazyLoadMembers: true,
      initialSyncLimit: 30,
      threadSupport: false,
    });
  } catch (error) {
    console.error("the client could not start", error);
  }
}

/** Stops the running client (sign-out).  Its stores stay until clearStores(). */
export async function stopClient(): Promise<MatrixClient | null> {
  const running = current;
  if (!running) return null;
  current = null;
  running.stop();
  stopOutbox();
  running.matrix.stopClient();
  running.matrix.removeAllListeners();
  syncState.value = "STOPPED";
  features.value = NO_FEATURES;
  client.value = null;
  return running.matrix;
}

/**
 * Starts the Rust crypto (its store is IndexedDB).  The sync waits until it has
 * started or failed: to-device messages (room keys) that a sync delivers, and
 * acknowledges, before crypto runs would be lost for good.  A failure is reported
 * (cryptoStartup) and the app goes on with the unencrypted rooms only.
 */
async function startCrypto(matrix: MatrixClient): Promise<void> {
  cryptoStartup.value = { state: "starting" };
  const slow = setTimeout(() => console.warn(`crypto not ready after ${CRYPTO_SLOW_MS / 1000} s; the sync still waits for it`), CRYPTO_SLOW_MS);
  try {
    await matrix.initRustCrypto({ cryptoDatabasePrefix: cryptoDatabasePrefix() });
    cryptoStartup.value = { state: "ready" };
  } catch (error) {
    console.error("end-to-end encryption is unavailable", error);
    cryptoStartup.value = { state: "unavailable", error: String((error as Error)?.message ?? error) };
  } finally {
    clearTimeout(slow);
  }
}

/** Asks the server what it offers (/versions, /capabilities, /login) and remembers it. */
export async function refreshFeatures(matrix: MatrixClient, baseUrl: string): Promise<void> {
  try {
    const [versions, capabilities, loginFlows] = await Promise.all([
      matrix.getVersions(),
      matrix.getCapabilities().catch(() => ({}) as Record<string, unknown>),
      matrix.loginFlows().catch(() => ({ flows: [] })),
    ]);
    const discovered = featuresFrom(versions, capabilities as Record<string, unknown>, loginFlows.flows as unknown[]);
    features.value = discovered;
    try {
      localStorage.setItem(FEATURES_KEY, JSON.stringify({ baseUrl, features: discovered }));
    } catch {
      // storage full or disabled: discovery simply runs again next time
    }
  } catch (error) {
    console.warn("could not ask the server what it offers; using what was known", error);
  }
}

/** The features a server's /versions, /capabilities and /login answers show. */
export function featuresFrom(
  versions: { versions?: string[]; unstable_features?: Record<string, boolean> },
  capabilities: Record<string, unknown>,
  loginFlows: unknown[],
): ServerFeatures {
  const unstable = versions.unstable_features ?? {};
  const webpush = capabilities["m.webpush"] as { enabled?: boolean; vapid?: string } | undefined;
  return {
    websocketStream: unstable["dev.homeserver.stream"] === true,
    deliveredReceipts: unstable["dev.homeserver.delivered_receipts"] === true,
    searchFilters: unstable["dev.homeserver.search_filters"] === true,
    webPushVapidKey: webpush?.enabled && typeof webpush.vapid === "string" ? webpush.vapid : null,
    authenticatedMedia: (versions.versions ?? []).some((version) => atLeast(version, 1, 11)),
    ssoProviders: ssoProvidersFrom(loginFlows),
  };
}

export function ssoProvidersFrom(flows: unknown[]): SsoProvider[] {
  const providers: SsoProvider[] = [];
  for (const flow of flows as { type?: string; identity_providers?: SsoProvider[] }[]) {
    if (flow.type !== "m.login.sso") continue;
    // spec: client-server-api/_index.md#client-login-via-sso: a flow without providers
    // still allows the server's default one.
    const listed = flow.identity_providers?.filter((idp) => typeof idp?.id === "string" && typeof idp.name === "string");
    providers.push(...(listed?.length ? listed : [{ id: "", name: "Single sign-on" }]));
  }
  return providers;
}

function atLeast(version: string, major: number, minor: number): boolean {
  const match = /^v(\d+)\.(\d+)$/.exec(version);
  if (!match) return false;
  const [maj, min] = [Number(match[1]), Number(match[2])];
  return maj > major || (maj === major && min >= minor);
}

function loadCachedFeatures(baseUrl: string): ServerFeatures | null {
  try {
    const cached = JSON.parse(localStorage.getItem(FEATURES_KEY) ?? "null") as { baseUrl: string; features: ServerFeatures } | null;
    if (cached?.baseUrl === baseUrl) return { ...NO_FEATURES, ...cached.features };
  } catch {
    // unreadable: start without, discovery fills it in
  }
  return null;
}
