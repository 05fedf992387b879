// The open room's finishing touches: formatted and linked messages in the log, jumping
// to a message (a reply's quote, a search result), the notice after leaving or being
// removed, and which room to reopen at start.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { h, render } from "preact";
import { act } from "preact/test-utils";
import { createClient, Direction, MatrixEvent, Room, type MatrixClient } from "matrix-js-sdk";

vi.mock("../../src/offline/outbox", async () => {
  const { signal } = await import("@preact/signals");
  return { outboxItems: signal([]), queueEvent: vi.fn(), retryItem: vi.fn(), discardItem: vi.fn() };
});
vi.mock("../../src/ui/media/MediaBody", () => ({ MediaBody: () => null }));

const { client, focusEvent } = await import("../../src/state/app");
const { Timeline, loadUntilFound } = await import("../../src/ui/timeline/Timeline");
const { departureText } = await import("../../src/ui/room/RoomView");
const { lastRoomKey, readLastRoom, reopenDecision, writeLastRoom } = await import("../../src/rooms/lastRoom");
const { clearSessionStorage } = await import("../../src/session/storage");

const ALICE = "@alice:hs";
const BOB = "@bob:hs";
const ROOM = "!room:hs";
let ts = Date.UTC(2026, 0, 5, 12);

function event(id: string, type: string, sender: string, content: Record<string, unknown>, stateKey?: string) {
  return new MatrixEvent({ event_id: id, type, sender, room_id: ROOM, content, origin_server_ts: ts++, state_key: stateKey });
}
const text = (id: string, body: string, extra: Record<string, unknown> = {}) => event(id, "m.room.message", BOB, { msgtype: "m.text", body, ...extra });

let matrix: MatrixClient;
let room: Room;
let container: HTMLElement;

beforeEach(async () => {
  matrix = createClient({ baseUrl: "http://127.0.0.1:1", userId: ALICE });
  client.value = matrix;
  room = new Room(ROOM, matrix, ALICE);
  await room.addLiveEvents(
    [
      event("$ja", "m.room.member", ALICE, { membership: "join", displayname: "Alice" }, ALICE),
      event("$jb", "m.room.member", BOB, { membership: "join", displayname: "Bob" }, BOB),
      text("$plain", "see https://example.org/page now"),
      text("$html", "**hi**", {
        format: "org.matrix.custom.html",
        formatted_body: '<mx-reply><blockquote>quoted fallback</blockquote></mx-reply><b>hi</b><img src=x onerror="window.pwned=1"><script>window.pwned=2</script>',
      }),
      text("$reply", "the answer", { "m.relates_to": { "m.in_reply_to": { event_id: "$plain" } } }),
    ],
    { addToState: true },
  );
  container = document.createElement("div");
  document.body.append(container);
});

afterEach(() => {
  act(() => render(null, container));
  container.remove();
  client.value = null;
  focusEvent.value = null;
});

describe("messages in the log", () => {
  it("shows formatted bodies sanitized and plain links as links", () => {
    act(() => render(h(Timeline, { room }), container));
    const html = container.querySelector('[data-event-id="$html"]')!;
    expect(html.querySelector("b")?.textContent).toBe("hi");
    expect(html.innerHTML).not.toMatch(/script|onerror|quoted fallback/);
    expect((window as { pwned?: number }).pwned).toBeUndefined();
    const link = container.querySelector<HTMLAnchorElement>('[data-event-id="$plain"] a')!;
    expect(link.getAttribute("href")).toBe("https://example.org/page");
    expect(link.rel).toBe("noopener noreferrer");
    expect(link.textContent).toBe("https://example.org/page");
  });

  it("jumps to the quoted message when a reply's quote is chosen", async () => {
    act(() => render(h(Timeline, { room }), container));
    const quote = container.querySelector<HTMLButtonElement>('[data-event-id="$reply"] .reply-quote')!;
    expect(quote.textContent).toContain("see https://example.org/page now");
    await act(async () => quote.click());
    await act(async () => undefined);
    expect(focusEvent.value).toBeNull(); // taken by the timeline
    const target = container.querySelector('[data-event-id="$plain"]')!;
    expect(target.closest("li")!.classList.contains("jumped-to")).toBe(true);
    expect(document.activeElement).toBe(target);
  });

  it("says so when the message cannot be found", async () => {
    act(() => render(h(Timeline, { room }), container));
    await act(async () => void (focusEvent.value = { roomId: ROOM, eventId: "$nowhere" }));
    await act(async () => undefined);
    expect(container.textContent).toContain("too far back");
    expect(container.querySelector(".jumped-to")).toBeNull();
  });

  it("ignores a jump meant for another room", async () => {
    act(() => render(h(Timeline, { room }), container));
    await act(async () => void (focusEvent.value = { roomId: "!other:hs", eventId: "$plain" }));
    expect(focusEvent.value).not.toBeNull();
    expect(container.querySelector(".jumped-to")).toBeNull();
  });
});

describe("loadUntilFound", () => {
  function paginatesOlder(pages: MatrixEvent[][]) {
    const live = room.getLiveTimeline();
    live.setPaginationToken("older", Direction.Backward);
    return vi.spyOn(matrix, "paginateEventTimeline").mockImplementation(async () => {
      const page = pages.shift() ?? [];
      room.addEventsToTimeline(page, true, false, live, pages.length ? "older" : undefined);
      if (!pages.length) live.setPaginationToken(null, Direction.Backward);
      return pages.length > 0;
    });
  }

  it("pages back until the event is there", async () => {
    const paginate = paginatesOlder([[text("$p1", "one")], [text("$old", "old one")], [text("$p3", "three")]]);
    expect(await loadUntilFound(matrix, room, "$old")).toBe("$old");
    expect(paginate).toHaveBeenCalledTimes(2);
  });

  it("answers the message an edit or a reaction shows on", async () => {
    paginatesOlder([[event("$edit", "m.room.message", BOB, { msgtype: "m.text", body: "* x", "m.relates_to": { rel_type: "m.replace", event_id: "$plain" } })]]);
    expect(await loadUntilFound(matrix, room, "$edit")).toBe("$plain");
  });

  it("gives up at the start of the room or after ten pages", async () => {
    const paginate = paginatesOlder(Array.from({ length: 20 }, (_, page) => [text(`$page${page}`, "filler")]));
    expect(await loadUntilFound(matrix, room, "$never")).toBeNull();
    expect(paginate).toHaveBeenCalledTimes(10);
    paginate.mockClear();
    room.getLiveTimeline().setPaginationToken(null, Direction.Backward);
    expect(await loadUntilFound(matrix, room, "$never")).toBeNull();
    expect(paginate).not.toHaveBeenCalled();
  });
});

describe("departureText", () => {
  async function membership(sender: string, content: Record<string, unknown>) {
    await room.addLiveEvents([event(`$m${ts}`, "m.room.member", sender, content, ALICE)], { addToState: true });
    return departureText(room, ALICE);
  }

  it("tells who removed or banned the user and why", async () => {
    expect(await membership(BOB, { membership: "leave", reason: "spam" })).toBe("You were removed from this room by Bob: spam");
    expect(await membership(BOB, { membership: "ban" })).toBe("You were banned from this room by Bob");
    expect(await membership(ALICE, { membership: "leave" })).toBe("You left this room");
  });
});

describe("the last open room", () => {
  beforeEach(() => localStorage.clear());

  it("is kept per account and deleted at sign-out", () => {
    writeLastRoom(ALICE, ROOM);
    writeLastRoom(BOB, "!bobs:hs");
    expect(readLastRoom(ALICE)).toBe(ROOM);
    clearSessionStorage(ALICE);
    expect(localStorage.getItem(lastRoomKey(ALICE))).toBeNull();
    expect(readLastRoom(BOB)).toBe("!bobs:hs");
    writeLastRoom(BOB, null);
    expect(readLastRoom(BOB)).toBeNull();
  });

  it("is reopened only while joined", () => {
    expect(reopenDecision("join", false)).toBe("open");
    expect(reopenDecision(undefined, false)).toBe("wait");
    expect(reopenDecision("leave", false)).toBe("wait");
    expect(reopenDecision("leave", true)).toBe("drop");
    expect(reopenDecision(undefined, true)).toBe("drop");
  });
});
