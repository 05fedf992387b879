import { afterEach, describe, expect, it, vi } from "vitest";
import { RoomEvent } from "matrix-js-sdk";
import { canBeReading, receiptTarget, watchReadReceipts, type PageSignals } from "../../src/receipts/readPolicy";

describe("canBeReading", () => {
  it("is true only with the room open, the page visible and focused", () => {
    expect(canBeReading({ roomOpen: true, visibilityState: "visible", hasFocus: true })).toBe(true);
    expect(canBeReading({ roomOpen: false, visibilityState: "visible", hasFocus: true })).toBe(false);
    expect(canBeReading({ roomOpen: true, visibilityState: "hidden", hasFocus: true })).toBe(false);
    expect(canBeReading({ roomOpen: true, visibilityState: "visible", hasFocus: false })).toBe(false);
  });
});

describe("receiptTarget", () => {
  const me = "@me:hs";
  const entries = [
    { id: "$1", sender: "@bob:hs", pending: false },
    { id: "$2", sender: "@bob:hs", pending: false },
    { id: "$3", sender: me, pending: false },
    { id: "~local", sender: "@bob:hs", pending: true },
  ];

  it("picks the newest event from someone else that the server has", () => {
    expect(receiptTarget(entries, me, -1)).toBe("$2");
  });

  it("picks nothing when that event is already read", () => {
    expect(receiptTarget(entries, me, 1)).toBeNull();
    expect(receiptTarget(entries, me, 2)).toBeNull();
  });

  it("picks nothing in an empty room or one with only one's own messages", () => {
    expect(receiptTarget([], me, -1)).toBeNull();
    expect(receiptTarget([{ id: "$9", sender: me, pending: false }], me, -1)).toBeNull();
  });
});

/** A page whose visibility and focus the test sets, firing the listeners like the browser would. */
function fakePage(visibility: DocumentVisibilityState, focus: boolean) {
  const listeners = new Set<() => void>();
  const page: PageSignals & { set(v: DocumentVisibilityState, f: boolean): void; listeners: Set<() => void> } = {
    listeners,
    visibilityState: () => visibility,
    hasFocus: () => focus,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(v, f) {
      visibility = v;
      focus = f;
      for (const listener of listeners) listener();
    },
  };
  return page;
}

function fakeEvent(id: string, sender: string) {
  return { getId: () => id, getSender: () => sender, status: null };
}

function fakeRoomAndClient() {
  const events = [fakeEvent("$1", "@bob:hs")];
  const room = {
    roomId: "!r:hs",
    getLiveTimeline: () => ({ getEvents: () => events }),
    getReadReceiptForUserId: () => null,
  };
  const handlers = new Map<string, (event: unknown, room: unknown) => void>();
  const sendReadReceipt = vi.fn().mockResolvedValue({});
  const client = {
    getUserId: () => "@me:hs",
    on: (name: string, handler: (event: unknown, room: unknown) => void) => handlers.set(name, handler),
    off: (name: string) => handlers.delete(name),
    sendReadReceipt,
  };
  const newEvent = async (id: string) => {
    const event = fakeEvent(id, "@bob:hs");
    events.push(event);
    handlers.get(RoomEvent.Timeline)?.(event, room);
    await Promise.resolve();
  };
  const sentIds = () => sendReadReceipt.mock.calls.map(([event]) => (event as { getId(): string }).getId());
  return { room, client, handlers, newEvent, sentIds };
}

describe("watchReadReceipts", () => {
  let stop: (() => void) | undefined;
  afterEach(() => stop?.());

  it("sends nothing while the page is hidden, and the receipt once it is shown and focused", async () => {
    const { room, client, newEvent, sentIds } = fakeRoomAndClient();
    const page = fakePage("hidden", false);
    stop = watchReadReceipts(client as never, room as never, page);
    await newEvent("$2");
    expect(sentIds()).toEqual([]);
    page.set("visible", false); // shown but another window has the focus
    expect(sentIds()).toEqual([]);
    page.set("visible", true);
    expect(sentIds()).toEqual(["$2"]);
  });

  it("sends for new events while readable, not after blur, and stops when the room closes", async () => {
    const { room, client, handlers, newEvent, sentIds } = fakeRoomAndClient();
    const page = fakePage("visible", true);
    stop = watchReadReceipts(client as never, room as never, page);
    expect(sentIds()).toEqual(["$1"]);
    await newEvent("$2");
    expect(sentIds()).toEqual(["$1", "$2"]);
    page.set("visible", false); // blur
    await newEvent("$3");
    expect(sentIds()).toEqual(["$1", "$2"]);
    stop();
    stop = undefined;
    expect(handlers.size).toBe(0);
    expect(page.listeners.size).toBe(0);
    page.set("visible", true);
    expect(sentIds()).toEqual(["$1", "$2"]);
  });

  it("does not send the same receipt twice", async () => {
    const { room, client, sentIds } = fakeRoomAndClient();
    const page = fakePage("visible", true);
    stop = watchReadReceipts(client as never, room as never, page);
    page.set("visible", true);
    page.set("visible", true);
    expect(sentIds()).toEqual(["$1"]);
  });
});
