// The timeline as rendered from a matrix-js-sdk Room: the "Messages" log, state lines,
// "Message deleted", ticks on one's own messages, and outbox items as "Sending".
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { h, render } from "preact";
import { act } from "preact/test-utils";
import { createClient, MatrixEvent, Room } from "matrix-js-sdk";

vi.mock("../../src/offline/outbox", async () => {
  const { signal } = await import("@preact/signals");
  return { outboxItems: signal([]), queueEvent: vi.fn(), retryItem: vi.fn(), discardItem: vi.fn() };
});
vi.mock("../../src/ui/media/MediaBody", () => ({ MediaBody: () => null }));

const { client } = await import("../../src/state/app");
const { outboxItems } = await import("../../src/offline/outbox");
const { Timeline } = await import("../../src/ui/timeline/Timeline");

const ALICE = "@alice:hs";
const BOB = "@bob:hs";
const ROOM = "!room:hs";
let ts = Date.UTC(2026, 0, 5, 12);

function event(id: string, type: string, sender: string, content: Record<string, unknown>, stateKey?: string, extra = {}) {
  return new MatrixEvent({ event_id: id, type, sender, room_id: ROOM, content, origin_server_ts: ts++, state_key: stateKey, ...extra });
}

let container: HTMLElement;
let room: Room;

beforeEach(async () => {
  const matrix = createClient({ baseUrl: "http://127.0.0.1:1", userId: ALICE });
  client.value = matrix;
  room = new Room(ROOM, matrix, ALICE);
  await room.addLiveEvents(
    [
      event("$create", "m.room.create", ALICE, { room_version: "11" }, ""),
      event("$ja", "m.room.member", ALICE, { membership: "join", displayname: "Alice" }, ALICE),
      event("$jb", "m.room.member", BOB, { membership: "join", displayname: "Bob" }, BOB),
      event("$m1", "m.room.message", ALICE, { msgtype: "m.text", body: "first from alice" }),
      event("$m2", "m.room.message", ALICE, { msgtype: "m.text", body: "second from alice" }),
      event("$b1", "m.room.message", BOB, {}, undefined, { unsigned: { redacted_because: { type: "m.room.redaction" } } }),
    ],
    { addToState: true },
  );
  room.addReceipt(
    new MatrixEvent({ type: "m.receipt", room_id: ROOM, content: { $m1: { "m.read": { [BOB]: { ts: ts++ } } }, $m2: { "dev.homeserver.delivered": { [BOB]: { ts: ts++ } } } } }),
  );
  container = document.createElement("div");
  document.body.append(container);
});

afterEach(() => {
  act(() => render(null, container));
  container.remove();
  outboxItems.value = [];
  client.value = null;
});

describe("Timeline", () => {
  it("renders the log with messages, state lines, deletions and ticks", () => {
    act(() => render(h(Timeline, { room }), container));
    const log = container.querySelector('[role="log"]')!;
    expect(log.getAttribute("aria-label")).toBe("Messages");
    expect(log.textContent).toContain("first from alice");
    expect(log.textContent).toContain("Bob joined");
    expect(log.textContent).toContain("Message deleted");
    const ticks = [...log.querySelectorAll('[role="status"]')].map((tick) => tick.getAttribute("aria-label"));
    expect(ticks).toEqual(["Seen", "Delivered"]);
  });

  it("shows this room's outbox items after the events as Sending, failed ones with Retry", () => {
    outboxItems.value = [
      { txnId: "t1", roomId: ROOM, eventType: "m.room.message", content: { msgtype: "m.text", body: "queued one" }, createdTs: ts, state: "queued" },
      { txnId: "t2", roomId: ROOM, eventType: "m.room.message", content: { msgtype: "m.text", body: "refused one" }, createdTs: ts, state: "failed", error: "M_FORBIDDEN" },
      { txnId: "t3", roomId: "!other:hs", eventType: "m.room.message", content: { msgtype: "m.text", body: "elsewhere" }, createdTs: ts, state: "queued" },
      { txnId: "t4", roomId: ROOM, eventType: "m.reaction", content: {}, createdTs: ts, state: "queued" },
    ] as never;
    act(() => render(h(Timeline, { room }), container));
    const log = container.querySelector('[role="log"]')!;
    const items = [...log.querySelectorAll("li")].map((item) => item.textContent ?? "");
    expect(items.at(-2)).toContain("queued one");
    expect(items.at(-1)).toContain("refused one");
    expect(log.textContent).not.toContain("elsewhere");
    const statuses = [...log.querySelectorAll('[role="status"]')].map((tick) => tick.getAttribute("aria-label"));
    expect(statuses).toEqual(["Seen", "Delivered", "Sending"]);
    expect([...log.querySelectorAll("button")].map((button) => button.textContent)).toEqual(expect.arrayContaining(["Retry", "Discard"]));
  });
});
