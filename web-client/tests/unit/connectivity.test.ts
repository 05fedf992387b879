import { afterEach, describe, expect, it, vi } from "vitest";

const flushOutbox = vi.hoisted(() => vi.fn(async () => {}));
vi.mock("../../src/offline/outbox", () => ({ flushOutbox }));

import { startConnectivity } from "../../src/offline/connectivity";
import { online, syncState } from "../../src/state/app";

function setBrowserOnline(value: boolean) {
  Object.defineProperty(navigator, "onLine", { configurable: true, get: () => value });
  window.dispatchEvent(new Event(value ? "online" : "offline"));
}

describe("connectivity", () => {
  let stop = () => {};
  afterEach(() => {
    stop();
    setBrowserOnline(true);
    syncState.value = "STOPPED";
    flushOutbox.mockClear();
  });

  it("follows the browser's online/offline events and asks the SDK to retry at once", () => {
    const matrix = { retryImmediately: vi.fn() };
    stop = startConnectivity(matrix as never);
    expect(online.value).toBe(true);
    setBrowserOnline(false);
    expect(online.value).toBe(false);
    setBrowserOnline(true);
    expect(online.value).toBe(true);
    expect(matrix.retryImmediately).toHaveBeenCalled();
    expect(flushOutbox).toHaveBeenCalledTimes(1); // the outbox goes out when the connection returns
  });

  it("counts a server that stopped answering (sync ERROR/RECONNECTING) as offline", () => {
    stop = startConnectivity(null);
    syncState.value = "SYNCING";
    expect(online.value).toBe(true);
    syncState.value = "RECONNECTING";
    expect(online.value).toBe(false);
    syncState.value = "ERROR";
    expect(online.value).toBe(false);
    syncState.value = "SYNCING";
    expect(online.value).toBe(true);
    expect(flushOutbox).toHaveBeenCalledTimes(1);
  });
});
