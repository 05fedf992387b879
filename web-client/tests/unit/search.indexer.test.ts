import { beforeEach, describe, expect, it } from "vitest";
import { MatrixEvent } from "matrix-js-sdk";
import { LocalSearchIndex } from "../../src/search/localIndex";
import { ingest } from "../../src/search/indexer";

/** A message as the SDK holds it after decrypting an m.room.encrypted event. */
function decrypted(eventId: string, content: Record<string, unknown>, ts = 1000, sender = "@bob:hs"): MatrixEvent {
  const event = new MatrixEvent({
    type: "m.room.message",
    event_id: eventId,
    room_id: "!enc:hs",
    sender,
    origin_server_ts: ts,
    content,
  });
  event.makeEncrypted("m.room.encrypted", { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "x" }, "curve", "ed");
  return event;
}

describe("ingest (local index of encrypted rooms)", () => {
  let index: LocalSearchIndex;
  beforeEach(() => {
    index = LocalSearchIndex.inMemory();
  });

  it("indexes decrypted messages with their room, sender, time and msgtype", async () => {
    await ingest(index, [decrypted("$1", { msgtype: "m.image", body: "beach.jpg" }, 42)]);
    expect(index.get("$1")).toEqual({ eventId: "$1", roomId: "!enc:hs", sender: "@bob:hs", ts: 42, msgtype: "m.image", body: "beach.jpg" });
  });

  it("skips plaintext events (the server searches those) and non-messages", async () => {
    const plain = new MatrixEvent({ type: "m.room.message", event_id: "$p", room_id: "!r:hs", sender: "@b:hs", content: { msgtype: "m.text", body: "plain" } });
    const topic = decrypted("$t", { topic: "x" });
    await ingest(index, [plain, topic]);
    expect(index.size).toBe(0);
  });

  it("replaces an edited message's text with m.new_content", async () => {
    await ingest(index, [decrypted("$1", { msgtype: "m.text", body: "see you at the statoin" })]);
    await ingest(index, [
      decrypted("$edit", {
        msgtype: "m.text",
        body: "* see you at the harbour",
        "m.new_content": { msgtype: "m.text", body: "see you at the harbour" },
        "m.relates_to": { rel_type: "m.replace", event_id: "$1" },
      }),
    ]);
    expect(index.size).toBe(1);
    expect(index.search("harbour").map((hit) => hit.eventId)).toEqual(["$1"]);
  });

  it("ignores an edit from anyone but the original's sender", async () => {
    await ingest(index, [decrypted("$1", { msgtype: "m.text", body: "meet at noon" })]);
    const forged = {
      msgtype: "m.text",
      body: "* meet at midnight",
      "m.new_content": { msgtype: "m.text", body: "meet at midnight" },
      "m.relates_to": { rel_type: "m.replace", event_id: "$1" },
    };
    await ingest(index, [decrypted("$forged", forged, 2000, "@mallory:hs")]);
    expect(index.get("$1")?.body).toBe("meet at noon");
    expect(index.search("midnight")).toEqual([]);
  });

  it("drops a message that arrives redacted", async () => {
    const event = decrypted("$1", { msgtype: "m.text", body: "oops wrong chat" });
    await ingest(index, [event]);
    expect(index.has("$1")).toBe(true);
    const redaction = new MatrixEvent({ type: "m.room.redaction", event_id: "$r", room_id: "!enc:hs", sender: "@bob:hs", redacts: "$1", content: {} });
    // makeRedacted needs the room only to move state; a stand-in with no state is enough here.
    event.makeRedacted(redaction, { getLiveTimeline: () => ({ getState: () => undefined }), findEventById: () => undefined } as never);
    await ingest(index, [event]);
    expect(index.has("$1")).toBe(false);
  });
});
