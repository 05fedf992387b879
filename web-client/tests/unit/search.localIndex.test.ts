import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deleteDB } from "idb";
import { LocalSearchIndex, SEARCH_DB_NAME, type IndexedMessage } from "../../src/search/localIndex";

const DAY = 24 * 60 * 60 * 1000;
const T0 = Date.UTC(2026, 0, 10);

function message(eventId: string, body: string, extra: Partial<IndexedMessage> = {}): IndexedMessage {
  return { eventId, roomId: "!a:hs", sender: "@bob:hs", ts: T0, msgtype: "m.text", body, ...extra };
}

describe("LocalSearchIndex", () => {
  let index: LocalSearchIndex;
  beforeEach(async () => {
    await deleteDB(SEARCH_DB_NAME);
    index = await LocalSearchIndex.open("@alice:hs");
  });
  afterEach(() => index.close());

  it("finds words despite a typo, and by their beginning", async () => {
    await index.put([message("$1", "The encryption message arrived late"), message("$2", "Lunch at noon?")]);
    expect(index.search("mesage").map((hit) => hit.eventId)).toEqual(["$1"]);
    expect(index.search("encryp").map((hit) => hit.eventId)).toEqual(["$1"]);
    expect(index.search("lunch noon").map((hit) => hit.eventId)).toEqual(["$2"]);
    expect(index.search("dinner")).toEqual([]);
    expect(index.search("mesage")[0].terms).toContain("message");
  });

  it("applies room, sender, date and media filters", async () => {
    await index.put([
      message("$old", "holiday photo", { ts: T0 - 3 * DAY }),
      message("$new", "holiday photo", { ts: T0, msgtype: "m.image", roomId: "!b:hs" }),
      message("$mine", "holiday plans", { sender: "@alice:hs", msgtype: "m.file" }),
    ]);
    const ids = (filters: Parameters<LocalSearchIndex["search"]>[1]) => index.search("holiday", filters).map((hit) => hit.eventId).sort();
    expect(ids({})).toEqual(["$mine", "$new", "$old"]);
    expect(ids({ roomIds: ["!b:hs"] })).toEqual(["$new"]);
    expect(ids({ sender: "@alice:hs" })).toEqual(["$mine"]);
    expect(ids({ sinceTs: T0 - DAY })).toEqual(["$mine", "$new"]);
    expect(ids({ untilTs: T0 - DAY })).toEqual(["$old"]);
    expect(ids({ media: ["image"] })).toEqual(["$new"]);
    expect(ids({ media: ["image", "file"] })).toEqual(["$mine", "$new"]);
  });

  it("keeps only unread messages when asked, by the caller's read-receipt test", async () => {
    await index.put([message("$read", "status report", { ts: T0 - DAY }), message("$unread", "status update")]);
    const afterReceipt = (m: IndexedMessage) => m.ts > T0 - DAY;
    expect(index.search("status", { unreadOnly: true }, afterReceipt).map((hit) => hit.eventId)).toEqual(["$unread"]);
    expect(index.search("status", { unreadOnly: false }, afterReceipt)).toHaveLength(2);
  });

  it("survives a reload: a new instance over the same database finds the messages", async () => {
    await index.put([message("$1", "persistent kangaroo")]);
    index.close();
    const reopened = await LocalSearchIndex.open("@alice:hs");
    expect(reopened.search("kangaroo").map((hit) => hit.eventId)).toEqual(["$1"]);
    expect(reopened.get("$1")?.body).toBe("persistent kangaroo");
    reopened.close();
    index = await LocalSearchIndex.open("@alice:hs");
  });

  it("does not show one user's messages to another who signs in on the same browser", async () => {
    await index.put([message("$1", "secret kangaroo")]);
    index.close();
    index = await LocalSearchIndex.open("@mallory:hs");
    expect(index.search("kangaroo")).toEqual([]);
    expect(index.size).toBe(0);
  });

  it("forgets redacted messages, in memory and in the database", async () => {
    await index.put([message("$1", "delete this wombat"), message("$2", "keep this wombat")]);
    await index.remove(["$1", "$unknown"]);
    expect(index.search("wombat").map((hit) => hit.eventId)).toEqual(["$2"]);
    index.close();
    index = await LocalSearchIndex.open("@alice:hs");
    expect(index.search("wombat").map((hit) => hit.eventId)).toEqual(["$2"]);
  });

  it("replaces the text of an edited message instead of adding a second entry", async () => {
    await index.put([message("$1", "meet at the statoin")]);
    await index.put([message("$1", "meet at the harbour")]);
    expect(index.size).toBe(1);
    expect(index.search("harbour").map((hit) => hit.eventId)).toEqual(["$1"]);
    expect(index.search("statoin")).toEqual([]);
  });

  it("is emptied by clear()", async () => {
    await index.put([message("$1", "anything at all")]);
    await index.clear();
    expect(index.search("anything")).toEqual([]);
    index.close();
    index = await LocalSearchIndex.open("@alice:hs");
    expect(index.size).toBe(0);
  });
});
