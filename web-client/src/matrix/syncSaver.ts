/**
 * When the sync data is written to IndexedDB.  The SDK does it only every five
 * minutes, but an offline reload must show what arrived before it; each save writes
 * the whole sync state, so while syncing it happens at most every `intervalMs`, and
 * at once when the page is hidden or unloaded (a reload or a closed tab may follow).
 */
export function startSyncSaver(save: () => Promise<unknown>, intervalMs: number): { synced(): void; stop(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const saveNow = () => {
    clearTimeout(timer);
    timer = undefined;
    save().catch((error) => console.warn("could not save the sync data", error));
  };
  const onHidden = () => {
    if (document.visibilityState === "hidden" && timer !== undefined) saveNow();
  };
  document.addEventListener("visibilitychange", onHidden);
  window.addEventListener("pagehide", saveNow);
  return {
    /** A sync brought data: it is saved within intervalMs. */
    synced: () => {
      if (!stopped) timer ??= setTimeout(saveNow, intervalMs);
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      document.removeEventListener("visibilitychange", onHidden);
      window.removeEventListener("pagehide", saveNow);
    },
  };
}
