// The composer's keyboard contract: Enter sends through the outbox, Shift+Enter does
// not, a reply carries m.in_reply_to, Escape cancels it, Up in an empty composer edits
// one's last message and the edit is sent as m.replace.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { h, render } from "preact";
import { act } from "preact/test-utils";
import { createClient, MatrixEvent, Room } from "matrix-js-sdk";

const queued: [string, string, Record<string, unknown>][] = [];
vi.mock("../../src/offline/outbox", async () => {
  const { signal } = await import("@preact/signals");
  return {
    outboxItems: signal([]),
    queueEvent: async (roomId: string, type: string, content: Record<string, unknown>) => {
      queued.push([roomId, type, content]);
      return `txn${queued.length}`;
    },
    retryItem: async () => undefined,
    discardItem: async () => undefined,
  };
});
vi.mock("../../src/ui/media/AttachButton", () => ({ AttachButton: () => null }));

const { client } = await import("../../src/state/app");
const { Composer } = await import("../../src/ui/timeline/Composer");
const { replyingTo, editing } = await import("../../src/ui/timeline/composerState");

const ME = "@alice:hs";
const ROOM = "!room:hs";

function message(id: string, sender: string, body: string) {
  return new MatrixEvent({ event_id: id, type: "m.room.message", sender, room_id: ROOM, content: { msgtype: "m.text", body }, origin_server_ts: 1 });
}

let container: HTMLElement;
let room: Room;

beforeEach(async () => {
  queued.length = 0;
  const matrix = createClient({ baseUrl: "http://127.0.0.1:1", userId: ME });
  matrix.sendTyping = vi.fn().mockResolvedValue({});
  client.value = matrix;
  room = new Room(ROOM, matrix, ME);
  await room.addLiveEvents([message("$mine", ME, "first draft"), message("$theirs", "@bob:hs", "hello")], { addToState: false });
  container = document.createElement("div");
  document.body.append(container);
  act(() => render(h(Composer, { room }), container));
});

afterEach(() => {
  act(() => render(null, container));
  container.remove();
  replyingTo.value = editing.value = null;
  client.value = null;
});

const textarea = () => container.querySelector<HTMLTextAreaElement>("textarea[aria-label=Message]")!;
function type(text: string) {
  act(() => {
    textarea().value = text;
    textarea().dispatchEvent(new Event("input", { bubbles: true }));
  });
}
function press(key: string, shiftKey = false) {
  act(() => {
    textarea().dispatchEvent(new KeyboardEvent("keydown", { key, shiftKey, bubbles: true, cancelable: true }));
  });
}

describe("Composer", () => {
  it("sends on Enter, not on Shift+Enter, and clears", () => {
    type("hi bob");
    press("Enter", true);
    expect(queued).toEqual([]);
    press("Enter");
    expect(queued).toEqual([[ROOM, "m.room.message", { msgtype: "m.text", body: "hi bob" }]]);
    expect(textarea().value).toBe("");
  });

  it("sends a reply with m.in_reply_to, and Escape cancels a reply", () => {
    act(() => void (replyingTo.value = room.findEventById("$theirs")!));
    expect(container.textContent).toContain("Replying to");
    press("Escape");
    expect(replyingTo.value).toBeNull();
    act(() => void (replyingTo.value = room.findEventById("$theirs")!));
    type("yes");
    press("Enter");
    expect(queued[0]![2]).toEqual({ msgtype: "m.text", body: "yes", "m.relates_to": { "m.in_reply_to": { event_id: "$theirs" } } });
    expect(replyingTo.value).toBeNull();
  });

  it("edits one's last message with Up in an empty composer", () => {
    press("ArrowUp");
    expect(editing.value?.getId()).toBe("$mine");
    expect(textarea().value).toBe("first draft");
    type("final text");
    press("Enter");
    expect(queued[0]![2]).toMatchObject({
      "m.new_content": { msgtype: "m.text", body: "final text" },
      "m.relates_to": { rel_type: "m.replace", event_id: "$mine" },
    });
  });

  it("tells the room when typing starts and stops on send", () => {
    type("h");
    press("Enter");
    expect(vi.mocked(client.value!.sendTyping).mock.calls.map((call) => call[1])).toEqual([true, false]);
  });

  it("keeps the unsent text of a room when another room is opened and back", async () => {
    type("half a thought");
    act(() => render(null, container));
    const other = new Room("!other:hs", client.value!, ME);
    act(() => render(h(Composer, { room: other }), container));
    expect(textarea().value).toBe("");
    act(() => render(null, container));
    act(() => render(h(Composer, { room }), container));
    expect(textarea().value).toBe("half a thought");
    press("Enter");
    act(() => render(null, container));
    act(() => render(h(Composer, { room }), container));
    expect(textarea().value).toBe("");
  });

  it("is disabled, saying why, where the user's power level is below what messages need", async () => {
    const levels = new MatrixEvent({
      event_id: "$pl", type: "m.room.power_levels", state_key: "", sender: "@bob:hs", room_id: ROOM,
      content: { events_default: 50, users: { "@bob:hs": 100 } }, origin_server_ts: 2,
    });
    await room.addLiveEvents([levels], { addToState: true });
    act(() => render(null, container));
    act(() => render(h(Composer, { room }), container));
    expect(container.textContent).toContain("You don't have permission to post in this room");
    expect(textarea().disabled || textarea().closest("fieldset")!.disabled).toBe(true);
    type("sneaky");
    press("Enter");
    expect(queued).toEqual([]);
  });
});
