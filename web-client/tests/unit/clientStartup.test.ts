import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

/** The SDK's client as far as matrix/client.ts starts it; crypto's start is up to the test. */
const sdk = vi.hoisted(() => ({
  client: null as null | (EventEmitter & Record<string, ReturnType<typeof import("vitest").vi.fn>>),
  crypto: null as null | { resolve: () => void; reject: (error: Error) => void },
  storeNames: [] as string[],
}));

vi.mock("matrix-js-sdk", async (importOriginal) => {
  const actual = await importOriginal<typeof import("matrix-js-sdk")>();
  const { EventEmitter: Emitter } = await import("node:events");
  return {
    ...actual,
    IndexedDBStore: class {
      constructor(options: { dbName: string }) {
        sdk.storeNames.push(options.dbName);
      }
      startup = async () => undefined;
      save = async () => undefined;
    },
    createClient: () => {
      const client = Object.assign(new Emitter(), {
        initRustCrypto: vi.fn(() => new Promise<void>((resolve, reject) => (sdk.crypto = { resolve, reject }))),
        startClient: vi.fn(async () => undefined),
        stopClient: vi.fn(),
        getVersions: vi.fn(() => Promise.reject(new Error("offline"))),
        getCapabilities: vi.fn(() => Promise.reject(new Error("offline"))),
        loginFlows: vi.fn(() => Promise.reject(new Error("offline"))),
      });
      sdk.client = client as never;
      return client;
    },
  };
});
const outbox = vi.hoisted(() => ({ ready: null as Promise<unknown> | null }));
vi.mock("../../src/offline/outbox", () => ({
  startOutbox: vi.fn(async (_client: unknown, ready: Promise<unknown>) => void (outbox.ready = ready)),
  stopOutbox: vi.fn(),
}));
vi.mock("../../src/offline/connectivity", () => ({ startConnectivity: () => () => undefined }));
vi.mock("../../src/notify", () => ({ startNotifications: () => () => undefined }));
vi.mock("../../src/search/indexer", () => ({ startLocalSearchIndex: () => () => undefined }));
vi.mock("../../src/matrix/events", () => ({ watchClient: () => () => undefined }));

import { cryptoStartup, startClient, stopClient } from "../../src/matrix/client";

const SESSION = { baseUrl: "https://hs.example", userId: "@alice:hs.example", deviceId: "DEV1", accessToken: "tok" };

describe("client start", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    sdk.storeNames = [];
    // The server's features are known from an earlier start: no discovery wait.
    localStorage.setItem("hs.features", JSON.stringify({ baseUrl: SESSION.baseUrl, features: {} }));
  });
  afterEach(async () => {
    await stopClient();
    vi.useRealTimers();
  });

  it("does not sync before crypto has started, however long that takes", async () => {
    await startClient(SESSION, () => undefined);
    await vi.advanceTimersByTimeAsync(25_000);
    expect(sdk.client!.startClient).not.toHaveBeenCalled();
    expect(cryptoStartup.value.state).toBe("starting");
    sdk.crypto!.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(cryptoStartup.value.state).toBe("ready");
    expect(sdk.client!.startClient).toHaveBeenCalledTimes(1);
  });

  it("syncs without encryption, and says why, when crypto fails", async () => {
    await startClient(SESSION, () => undefined);
    sdk.crypto!.reject(new Error("no IndexedDB"));
    await vi.advanceTimersByTimeAsync(0);
    expect(cryptoStartup.value).toEqual({ state: "unavailable", error: "no IndexedDB" });
    expect(sdk.client!.startClient).toHaveBeenCalledTimes(1);
  });

  it("lets the outbox send only after the first sync has made the rooms known", async () => {
    await startClient(SESSION, () => undefined);
    let ready = false;
    void outbox.ready!.then(() => (ready = true));
    sdk.crypto!.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(ready).toBe(false);
    sdk.client!.emit("sync", "PREPARED");
    await vi.advanceTimersByTimeAsync(0);
    expect(ready).toBe(true);
  });

  it("keeps each session's sync and crypto stores apart", async () => {
    await startClient(SESSION, () => undefined);
    expect(sdk.storeNames).toEqual(["hs-sync:@alice:hs.example/DEV1"]);
    expect(sdk.client!.initRustCrypto).toHaveBeenCalledWith({ cryptoDatabasePrefix: "matrix-js-sdk:@alice:hs.example/DEV1" });
    await startClient({ ...SESSION, userId: "@bob:hs.example", deviceId: "DEV2" }, () => undefined);
    expect(sdk.storeNames[1]).toBe("hs-sync:@bob:hs.example/DEV2");
  });
});
