import { describe, expect, it, vi } from "vitest";
import type { MatrixClient } from "matrix-js-sdk";
import { buildSearchBody, buildSearchFilter, searchServer } from "../../src/search/serverSearch";
import { fuzzyMatchNames, highlightParts, mergeResults, type MessageResult } from "../../src/search/results";
import { dayEnd, dayStart } from "../../src/search/filters";

describe("server search request", () => {
  const filters = { roomIds: ["!r:hs"], sender: "@bob:hs", sinceTs: 10, untilTs: 20, unreadOnly: true, media: ["image" as const, "audio" as const] };

  it("sends the dev.homeserver filters (docs/search.md) when the server offers them", () => {
    expect(buildSearchFilter(filters, true)).toEqual({
      limit: 20,
      rooms: ["!r:hs"],
      senders: ["@bob:hs"],
      "dev.homeserver.since_ts": 10,
      "dev.homeserver.until_ts": 20,
      "dev.homeserver.unread_only": true,
      "dev.homeserver.media": ["image", "audio"],
    });
  });

  it("sends only the spec's filter fields to other servers", () => {
    expect(buildSearchFilter(filters, false)).toEqual({ limit: 20, rooms: ["!r:hs"], senders: ["@bob:hs"] });
  });

  it("asks for message bodies, newest first", () => {
    const body = buildSearchBody("hello", {}, true).search_categories.room_events;
    expect(body).toMatchObject({ search_term: "hello", keys: ["content.body"], order_by: "recent" });
  });

  it("reads results, highlights and next_batch, and pages with next_batch", async () => {
    const search = vi.fn().mockResolvedValue({
      search_categories: {
        room_events: {
          count: 3,
          highlights: ["message"],
          next_batch: "abc",
          results: [
            { rank: 1.5, result: { event_id: "$1", room_id: "!r:hs", sender: "@bob:hs", origin_server_ts: 5, type: "m.room.message", content: { msgtype: "m.text", body: "a message" } } },
          ],
        },
      },
    });
    const page = await searchServer({ search } as unknown as MatrixClient, "messgae", {}, true, "prev");
    expect(search).toHaveBeenCalledWith({ body: buildSearchBody("messgae", {}, true), next_batch: "prev" });
    expect(page).toEqual({
      hits: [{ eventId: "$1", roomId: "!r:hs", sender: "@bob:hs", ts: 5, msgtype: "m.text", body: "a message", rank: 1.5 }],
      highlights: ["message"],
      count: 3,
      nextBatch: "abc",
    });
  });
});

describe("search results", () => {
  const result = (eventId: string, ts: number, source: "server" | "local"): MessageResult => ({
    eventId, roomId: "!r:hs", sender: "@b:hs", ts, msgtype: "m.text", body: eventId, source,
  });

  it("merges server and local results newest first, each event once", () => {
    const merged = mergeResults([result("$a", 1, "server"), result("$b", 3, "server")], [result("$c", 2, "local"), result("$a", 1, "local")]);
    expect(merged.map((r) => r.eventId)).toEqual(["$b", "$c", "$a"]);
  });

  it("marks the matched words, case-insensitively", () => {
    expect(highlightParts("A Message and a message", ["message"])).toEqual([
      { text: "A ", match: false },
      { text: "Message", match: true },
      { text: " and a ", match: false },
      { text: "message", match: true },
    ]);
    expect(highlightParts("a (b)", ["(b"])).toEqual([{ text: "a ", match: false }, { text: "(b", match: true }, { text: ")", match: false }]);
    expect(highlightParts("nothing", [])).toEqual([{ text: "nothing", match: false }]);
  });

  it("finds room names fuzzily", () => {
    const rooms = [{ id: "1", name: "Engineering" }, { id: "2", name: "Random" }];
    expect(fuzzyMatchNames(rooms, "enginering").map((r) => r.id)).toEqual(["1"]);
    expect(fuzzyMatchNames(rooms, "ran").map((r) => r.id)).toEqual(["2"]);
  });

  it("turns date inputs into the whole local day", () => {
    expect(dayStart("")).toBeUndefined();
    const start = dayStart("2026-03-04")!;
    expect(new Date(start).getHours()).toBe(0);
    expect(dayEnd("2026-03-04")! - start).toBe(24 * 60 * 60 * 1000 - 1);
  });
});
