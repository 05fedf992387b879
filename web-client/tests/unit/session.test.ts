import { beforeEach, describe, expect, it, vi } from "vitest";
import { IDBFactory } from "fake-indexeddb";

// The client module is replaced: these tests are about the session's life, not the SDK.
const clientMock = vi.hoisted(() => ({
  running: null as null | { logout: ReturnType<typeof vi.fn>; clearStores: ReturnType<typeof vi.fn>; getUserId: () => string },
  onLoggedOut: null as null | ((error: unknown) => void),
  started: [] as unknown[],
}));
vi.mock("../../src/matrix/client", () => ({
  startClient: vi.fn(async (session: unknown, onLoggedOut: (error: unknown) => void) => {
    clientMock.started.push(session);
    clientMock.onLoggedOut = onLoggedOut;
    clientMock.running = {
      logout: vi.fn(async () => ({})),
      clearStores: vi.fn(async () => {}),
      getUserId: () => "@alice:hs.example",
    };
    return clientMock.running;
  }),
  stopClient: vi.fn(async () => {
    const was = clientMock.running;
    clientMock.running = null;
    return was;
  }),
  getClient: () => clientMock.running,
  ssoProvidersFrom: () => [],
  cryptoDatabasePrefix: () => "matrix-js-sdk:@alice:hs.example/DEV",
}));

import { restoreSession, signOut, signedOutMessage, beginSession, openInOtherTab, useSessionHere } from "../../src/session/session";
import { SessionTabLock, sessionLockName, type LockApi } from "../../src/session/tabLock";
import { readSession, SESSION_KEY } from "../../src/session/storage";
import { deviceDisplayName } from "../../src/session/deviceName";
import { loginErrorMessage, serverNameOf, normaliseBaseUrl } from "../../src/session/login";

const SESSION = { baseUrl: "https://hs.example", userId: "@alice:hs.example", deviceId: "DEV", accessToken: "tok" };

function databaseNames(): Promise<string[]> {
  return indexedDB.databases().then((list) => list.map((db) => db.name!).sort());
}

function createDatabase(name: string): Promise<void> {
  return new Promise((resolve) => {
    const request = indexedDB.open(name, 1);
    request.onsuccess = () => (request.result.close(), resolve());
  });
}

describe("session", () => {
  beforeEach(() => {
    globalThis.indexedDB = new IDBFactory();
    localStorage.clear();
    clientMock.running = null;
    clientMock.started = [];
    signedOutMessage.value = null;
  });

  it("resumes the stored session without asking the network", async () => {
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    localStorage.setItem(SESSION_KEY, JSON.stringify(SESSION));
    await restoreSession();
    expect(clientMock.started).toEqual([SESSION]);
    expect(fetchSpy).not.toHaveBeenCalled();
    fetchSpy.mockRestore();
  });

  it("stays on the login screen without a (valid) stored session", async () => {
    localStorage.setItem(SESSION_KEY, JSON.stringify({ ...SESSION, accessToken: "" }));
    await restoreSession();
    expect(clientMock.started).toEqual([]);
  });

  it("signs out on the server, then deletes the session, the stores and the databases, keeping the theme", async () => {
    localStorage.setItem("hs.theme", "dark");
    localStorage.setItem("mxjssdk_memory_filter_FILTER_SYNC_@alice:hs.example", "1");
    await beginSession(SESSION);
    expect(readSession()).toEqual(SESSION);
    await createDatabase("hs-client");
    await createDatabase("hs-search-index");
    const running = clientMock.running!;

    await signOut();
    expect(running.logout).toHaveBeenCalled();
    expect(running.clearStores).toHaveBeenCalled();
    expect(readSession()).toBeNull();
    expect(Object.keys(localStorage)).toEqual(["hs.theme"]);
    expect(await databaseNames()).toEqual([]);
    expect(clientMock.running).toBeNull();
    expect(signedOutMessage.value).toBeNull();
  });

  it("still signs out here when the server cannot be reached", async () => {
    await beginSession(SESSION);
    clientMock.running!.logout.mockRejectedValue(new Error("fetch failed"));
    await signOut();
    expect(readSession()).toBeNull();
  });

  it("ends the session with 'You were signed out' when the server no longer knows the token", async () => {
    await beginSession(SESSION);
    const running = clientMock.running!;
    await clientMock.onLoggedOut!({ httpStatus: 401, errcode: "M_UNKNOWN_TOKEN" });
    expect(signedOutMessage.value).toBe("You were signed out");
    expect(readSession()).toBeNull();
    expect(running.clearStores).toHaveBeenCalled();
    expect(running.logout).not.toHaveBeenCalled();
  });

  it("finishes an SSO return: m.login.token, then the loginToken leaves the address bar", async () => {
    history.replaceState(null, "", "/?loginToken=abc123#/room");
    sessionStorage.setItem("hs.sso.baseUrl", location.origin); // this tab started the SSO login
    const fetchSpy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      expect(String(input)).toContain("/_matrix/client/v3/login");
      expect(JSON.parse(String(init?.body))).toMatchObject({ type: "m.login.token", token: "abc123" });
      return new Response(JSON.stringify({ user_id: "@bob:hs", device_id: "D2", access_token: "t2" }), {
        status: 200,
        headers: { "Content-Type": "application/json" },
      });
    });
    await restoreSession();
    expect(location.search).toBe("");
    expect(readSession()).toEqual({ baseUrl: location.origin, userId: "@bob:hs", deviceId: "D2", accessToken: "t2" });
    fetchSpy.mockRestore();
  });
});

describe("SSO returns this tab did not ask for", () => {
  beforeEach(() => {
    globalThis.indexedDB = new IDBFactory();
    localStorage.clear();
    sessionStorage.clear();
    clientMock.running = null;
    clientMock.started = [];
  });

  it("ignores a loginToken when this browser did not start SSO (login CSRF)", async () => {
    history.replaceState(null, "", "/?loginToken=attacker");
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    await restoreSession();
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(readSession()).toBeNull();
    expect(location.search).toBe("");
    fetchSpy.mockRestore();
  });

  it("keeps the stored session instead of exchanging a loginToken", async () => {
    localStorage.setItem(SESSION_KEY, JSON.stringify(SESSION));
    sessionStorage.setItem("hs.sso.baseUrl", location.origin);
    history.replaceState(null, "", "/?loginToken=other");
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    await restoreSession();
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(clientMock.started).toEqual([SESSION]);
    expect(location.search).toBe("");
    fetchSpy.mockRestore();
  });
});

describe("a session open in another tab", () => {
  /** navigator.locks of one origin, shared by the "tabs" of a test. */
  function fakeLocks(): LockApi {
    const held = new Set<string>();
    const waiting = new Map<string, (() => void)[]>();
    const grant = (name: string, callback: (lock: unknown) => Promise<void> | void): Promise<unknown> => {
      held.add(name);
      return Promise.resolve(callback({ name })).finally(() => {
        held.delete(name);
        waiting.get(name)?.shift()?.();
      });
    };
    return {
      request: (name, options, callback) => {
        if (!held.has(name)) return grant(name, callback);
        if (options.ifAvailable) return Promise.resolve(callback(null));
        return new Promise((resolve) => waiting.set(name, [...(waiting.get(name) ?? []), () => resolve(grant(name, callback))]));
      },
    };
  }

  it("does not start the client while another tab runs it, and takes it over on 'Use here'", async () => {
    globalThis.indexedDB = new IDBFactory();
    localStorage.setItem(SESSION_KEY, JSON.stringify(SESSION));
    clientMock.started = [];
    const locks = fakeLocks();
    Object.defineProperty(navigator, "locks", { configurable: true, value: locks });
    try {
      const otherTab = new SessionTabLock(sessionLockName(SESSION.userId, SESSION.deviceId), locks);
      expect(await otherTab.tryAcquire()).toBe(true);
      const stoppedThere = vi.fn(() => otherTab.release());
      otherTab.whenTakenOver(stoppedThere);

      await restoreSession();
      expect(clientMock.started).toEqual([]);
      expect(openInOtherTab.value).toEqual(SESSION);

      await useSessionHere();
      expect(stoppedThere).toHaveBeenCalled();
      expect(clientMock.started).toEqual([SESSION]);
      expect(openInOtherTab.value).toBeNull();
      await signOut();
    } finally {
      Reflect.deleteProperty(navigator, "locks");
    }
  });
});

describe("sign-out cleanup", () => {
  it("unsubscribes the browser's Web Push subscription", async () => {
    globalThis.indexedDB = new IDBFactory();
    const unsubscribe = vi.fn(async () => true);
    const registration = { pushManager: { getSubscription: async () => ({ unsubscribe }) } };
    const worker = await import("../../src/offline/serviceWorker");
    const spy = vi.spyOn(worker, "getServiceWorkerRegistration").mockResolvedValue(registration as never);
    Object.defineProperty(navigator, "serviceWorker", { configurable: true, value: {} });
    await beginSession(SESSION);
    await signOut();
    expect(unsubscribe).toHaveBeenCalled();
    spy.mockRestore();
  });
});

describe("login helpers", () => {
  it("names the device after the browser and system", () => {
    expect(deviceDisplayName("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36")).toBe(
      "Web (Chrome on Linux)",
    );
    expect(deviceDisplayName("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:130.0) Gecko/20100101 Firefox/130.0")).toBe("Web (Firefox on macOS)");
    expect(deviceDisplayName("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1")).toBe(
      "Web (Safari on iOS)",
    );
  });

  it("explains failures: the server's message, and 429 as a wait", () => {
    expect(loginErrorMessage({ httpStatus: 403, errcode: "M_FORBIDDEN", data: { error: "Invalid password" } }, "x")).toBe("Invalid password");
    expect(loginErrorMessage({ httpStatus: 429, errcode: "M_LIMIT_EXCEEDED", data: { retry_after_ms: 4200 } }, "x")).toBe(
      "Too many attempts: try again in 5 s.",
    );
    expect(loginErrorMessage(new Error("fetch failed"), "https://hs.example")).toBe("Cannot reach the server at https://hs.example.");
  });

  it("reads full user IDs and homeserver URLs", () => {
    expect(serverNameOf("@alice:example.org")).toBe("example.org");
    expect(serverNameOf("alice")).toBeNull();
    expect(normaliseBaseUrl("example.org/")).toBe("https://example.org");
    expect(normaliseBaseUrl("http://127.0.0.1:8008")).toBe("http://127.0.0.1:8008");
  });

  it("discovers what the server offers", async () => {
    const { featuresFrom } = await vi.importActual<typeof import("../../src/matrix/client")>("../../src/matrix/client");
    const found = featuresFrom(
      { versions: ["v1.10", "v1.11"], unstable_features: { "dev.homeserver.stream": true, "dev.homeserver.delivered_receipts": true } },
      { "m.webpush": { enabled: true, vapid: "BKey" } },
      [{ type: "m.login.password" }, { type: "m.login.sso", identity_providers: [{ id: "gh", name: "GitHub" }] }],
    );
    expect(found).toEqual({
      websocketStream: true,
      deliveredReceipts: true,
      searchFilters: false,
      webPushVapidKey: "BKey",
      authenticatedMedia: true,
      ssoProviders: [{ id: "gh", name: "GitHub" }],
    });
    expect(featuresFrom({ versions: ["v1.5"] }, {}, []).websocketStream).toBe(false);
  });
});
