import { describe, expect, it } from "vitest";
import { emptyTracker, trackRetries } from "../../src/ui/timeline/retrying";
import type { OutboxItem } from "../../src/offline/outbox";

const item = (txnId: string, state: OutboxItem["state"]): OutboxItem => ({
  txnId,
  roomId: "!r:hs",
  eventType: "m.room.message",
  content: { body: txnId },
  createdTs: 0,
  seq: 0,
  state,
});

describe("trackRetries", () => {
  it("marks an item retrying after a failed attempt, until it is sent or refused", () => {
    let tracker = trackRetries(emptyTracker(), [item("a", "queued"), item("b", "queued")]);
    expect([...tracker.retrying]).toEqual([]); // never tried: plain "Sending"
    tracker = trackRetries(tracker, [item("a", "sending"), item("b", "queued")]);
    expect([...tracker.retrying]).toEqual([]);
    tracker = trackRetries(tracker, [item("a", "queued"), item("b", "queued")]);
    expect([...tracker.retrying]).toEqual(["a"]);
    tracker = trackRetries(tracker, [item("a", "sending"), item("b", "queued")]);
    expect([...tracker.retrying]).toEqual(["a"]); // the next attempt is still a retry
    tracker = trackRetries(tracker, [item("b", "queued")]);
    expect([...tracker.retrying]).toEqual([]);
  });

  it("stops retrying when the server refuses the item", () => {
    let tracker = trackRetries(emptyTracker(), [item("a", "sending")]);
    tracker = trackRetries(tracker, [item("a", "queued")]);
    tracker = trackRetries(tracker, [item("a", "failed")]);
    expect(tracker.retrying.size).toBe(0);
  });
});
