import { describe, expect, it } from "vitest";
import { queuedReactionsFor, reactionChips } from "../../src/ui/timeline/reactionList";

const ME = "@me:hs";
const annotation = (eventId: string, key: string) => ({ "m.relates_to": { rel_type: "m.annotation", event_id: eventId, key } });

describe("reactionChips", () => {
  it("shows a reaction still in the outbox as one's own, once, even with its local echo", () => {
    const chips = reactionChips([["👍", [{ sender: "@bob:hs" }, { sender: ME, txnId: "t1" }]]], [{ key: "👍", txnId: "t1" }], ME);
    expect(chips).toEqual([{ key: "👍", senders: ["@bob:hs", ME], mine: true, queuedTxnId: "t1" }]);
  });

  it("adds a queued reaction with a key nobody used yet", () => {
    expect(reactionChips([], [{ key: "🎉", txnId: "t2" }], ME)).toEqual([{ key: "🎉", senders: [ME], mine: true, queuedTxnId: "t2" }]);
  });

  it("a sent reaction of one's own is not marked queued", () => {
    expect(reactionChips([["❤️", [{ sender: ME }]]], [], ME)).toEqual([{ key: "❤️", senders: [ME], mine: true }]);
  });
});

describe("queuedReactionsFor", () => {
  it("picks the outbox's annotations of this event only", () => {
    const items = [
      { roomId: "!r", eventType: "m.reaction", txnId: "a", content: annotation("$e", "👍") },
      { roomId: "!r", eventType: "m.reaction", txnId: "b", content: annotation("$other", "👍") },
      { roomId: "!x", eventType: "m.reaction", txnId: "c", content: annotation("$e", "👍") },
      { roomId: "!r", eventType: "m.room.message", txnId: "d", content: { body: "hi" } },
    ];
    expect(queuedReactionsFor(items, "!r", "$e")).toEqual([{ key: "👍", txnId: "a" }]);
  });
});
