// @vitest-environment-options {"url": "http://localhost:8008/"}
import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ClientEvent, MatrixEvent, SyncState, type MatrixClient } from "matrix-js-sdk";
import {
  THEME_ACCOUNT_DATA_TYPE,
  THEME_STORAGE_KEY,
  adoptAccountTheme,
  applyLocalChoice,
  parseThemeChoice,
  readStoredChoice,
  resolveTheme,
  setThemeChoice,
  syncThemeWithAccount,
  themeChoice,
  themeCookie,
} from "../../src/theme/theme";

/** Just what the theme sync uses of a MatrixClient: account data, sync events. */
class FakeClient extends EventEmitter {
  accountData = new Map<string, MatrixEvent>();
  synced = false;
  setAccountData = vi.fn(async (type: string, content: object) => {
    this.accountData.set(type, new MatrixEvent({ type, content }));
    return {};
  });
  getAccountData(type: string) {
    return this.accountData.get(type);
  }
  isInitialSyncComplete() {
    return this.synced;
  }
  /** What the SDK does when account data arrives in a sync. */
  receiveAccountData(content: object) {
    const event = new MatrixEvent({ type: THEME_ACCOUNT_DATA_TYPE, content });
    this.accountData.set(THEME_ACCOUNT_DATA_TYPE, event);
    this.emit(ClientEvent.AccountData, event);
  }
}
const asClient = (fake: FakeClient) => fake as unknown as MatrixClient;

function cookieValue(): string | undefined {
  return document.cookie
    .split("; ")
    .find((c) => c.startsWith("hs_theme="))
    ?.split("=")[1];
}

beforeEach(() => {
  localStorage.clear();
  document.cookie = "hs_theme=; Path=/; Max-Age=0";
  themeChoice.value = "system";
  delete document.documentElement.dataset.theme;
  delete document.documentElement.dataset.themeChoice;
});
afterEach(() => vi.restoreAllMocks());

describe("theme resolution", () => {
  it("accepts only the three choices", () => {
    expect(parseThemeChoice("dark")).toBe("dark");
    expect(parseThemeChoice("light")).toBe("light");
    expect(parseThemeChoice("system")).toBe("system");
    expect(parseThemeChoice("Dark")).toBeNull();
    expect(parseThemeChoice("")).toBeNull();
    expect(parseThemeChoice(undefined)).toBeNull();
    expect(parseThemeChoice(1)).toBeNull();
  });

  it("resolves System from the OS preference, the others as they are", () => {
    expect(resolveTheme("system", true)).toBe("dark");
    expect(resolveTheme("system", false)).toBe("light");
    expect(resolveTheme("dark", false)).toBe("dark");
    expect(resolveTheme("light", true)).toBe("light");
  });

  it("makes the cookie the server's pages read", () => {
    expect(themeCookie("dark")).toBe("hs_theme=dark; Path=/; Max-Age=31536000; SameSite=Lax");
  });
});

describe("applying a choice", () => {
  it("writes <html>, localStorage and the cookie", () => {
    applyLocalChoice("dark");
    expect(document.documentElement.dataset.theme).toBe("dark");
    expect(document.documentElement.dataset.themeChoice).toBe("dark");
    expect(localStorage.getItem(THEME_STORAGE_KEY)).toBe("dark");
    expect(cookieValue()).toBe("dark");
    expect(readStoredChoice()).toBe("dark");
    expect(themeChoice.value).toBe("dark");

    applyLocalChoice("light");
    expect(document.documentElement.dataset.theme).toBe("light");
    expect(cookieValue()).toBe("light");
  });

  it("ignores a stored value that is not a choice", () => {
    localStorage.setItem(THEME_STORAGE_KEY, "purple");
    expect(readStoredChoice()).toBeNull();
  });

  it("sends the choice to account data", async () => {
    const fake = new FakeClient();
    await setThemeChoice("dark", asClient(fake));
    expect(fake.setAccountData).toHaveBeenCalledWith(THEME_ACCOUNT_DATA_TYPE, { theme: "dark" });
    expect(localStorage.getItem(THEME_STORAGE_KEY)).toBe("dark");
  });

  it("keeps the choice locally when account data cannot be written", async () => {
    const fake = new FakeClient();
    fake.setAccountData.mockRejectedValueOnce(new Error("offline"));
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    await setThemeChoice("light", asClient(fake));
    expect(localStorage.getItem(THEME_STORAGE_KEY)).toBe("light");
    expect(document.documentElement.dataset.theme).toBe("light");
  });
});

describe("following the account", () => {
  it("applies the account's theme after the first sync", () => {
    const fake = new FakeClient();
    fake.accountData.set(THEME_ACCOUNT_DATA_TYPE, new MatrixEvent({ type: THEME_ACCOUNT_DATA_TYPE, content: { theme: "dark" } }));
    const stop = syncThemeWithAccount(asClient(fake));
    expect(document.documentElement.dataset.theme).toBeUndefined(); // not before the sync
    fake.emit(ClientEvent.Sync, SyncState.Prepared);
    expect(document.documentElement.dataset.theme).toBe("dark");
    expect(localStorage.getItem(THEME_STORAGE_KEY)).toBe("dark");
    expect(cookieValue()).toBe("dark");
    expect(fake.setAccountData).not.toHaveBeenCalled();
    stop();
  });

  it("applies a change made on another device", () => {
    const fake = new FakeClient();
    fake.synced = true;
    const stop = syncThemeWithAccount(asClient(fake));
    fake.receiveAccountData({ theme: "dark" });
    expect(themeChoice.value).toBe("dark");
    fake.receiveAccountData({ theme: "light" });
    expect(document.documentElement.dataset.theme).toBe("light");
    fake.receiveAccountData({ theme: "nonsense" });
    expect(themeChoice.value).toBe("light");
    stop();
    fake.receiveAccountData({ theme: "dark" });
    expect(themeChoice.value).toBe("light"); // stopped: no longer listening
  });

  it("uploads this device's explicit choice when the account has none", () => {
    localStorage.setItem(THEME_STORAGE_KEY, "dark");
    const fake = new FakeClient();
    fake.synced = true;
    syncThemeWithAccount(asClient(fake))();
    expect(fake.setAccountData).toHaveBeenCalledWith(THEME_ACCOUNT_DATA_TYPE, { theme: "dark" });
  });

  it("uploads nothing when neither has a choice", () => {
    const fake = new FakeClient();
    fake.synced = true;
    syncThemeWithAccount(asClient(fake))();
    expect(fake.setAccountData).not.toHaveBeenCalled();
  });

  it("does not switch back on the late echo of an earlier choice", async () => {
    const fake = new FakeClient();
    await setThemeChoice("dark", asClient(fake));
    await setThemeChoice("light", asClient(fake));
    adoptAccountTheme({ theme: "dark" }); // echo of the first write
    expect(themeChoice.value).toBe("light");
    adoptAccountTheme({ theme: "light" }); // echo of the second
    expect(themeChoice.value).toBe("light");
    adoptAccountTheme({ theme: "dark" }); // a real change from elsewhere
    expect(themeChoice.value).toBe("dark");
  });
});
