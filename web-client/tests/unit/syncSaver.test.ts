import { afterEach, describe, expect, it, vi } from "vitest";
import { startSyncSaver } from "../../src/matrix/syncSaver";

describe("sync saver", () => {
  afterEach(() => vi.useRealTimers());

  it("saves at most once per interval while syncing", () => {
    vi.useFakeTimers();
    const save = vi.fn(async () => undefined);
    const saver = startSyncSaver(save, 30_000);
    for (let i = 0; i < 25; i++) {
      saver.synced();
      vi.advanceTimersByTime(1000);
    }
    expect(save).not.toHaveBeenCalled();
    vi.advanceTimersByTime(5000);
    expect(save).toHaveBeenCalledTimes(1);
    saver.stop();
  });

  it("saves at once when the page is hidden or unloaded, and not after stop", () => {
    vi.useFakeTimers();
    const save = vi.fn(async () => undefined);
    const saver = startSyncSaver(save, 30_000);
    saver.synced();
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    document.dispatchEvent(new Event("visibilitychange"));
    expect(save).toHaveBeenCalledTimes(1);
    window.dispatchEvent(new Event("pagehide"));
    expect(save).toHaveBeenCalledTimes(2);
    saver.stop();
    window.dispatchEvent(new Event("pagehide"));
    saver.synced();
    vi.advanceTimersByTime(60_000);
    expect(save).toHaveBeenCalledTimes(2);
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
  });
});
