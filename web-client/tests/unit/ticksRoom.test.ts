// The tick adapter against matrix-js-sdk's real Room: receipts of the server's
// unstable delivered type are kept and read back, synthesised receipts are ignored.
import { describe, expect, it } from "vitest";
import { createClient, MatrixEvent, Room } from "matrix-js-sdk";
import { DELIVERED_RECEIPT, memberReceipts, receiptMarks, tickAt } from "../../src/receipts/ticks";

const ALICE = "@alice:hs";
const BOB = "@bob:hs";
const ROOM = "!room:hs";
let ts = 1_000;

function event(id: string, type: string, sender: string, content: Record<string, unknown>, stateKey?: string) {
  return new MatrixEvent({ event_id: id, type, sender, room_id: ROOM, content, origin_server_ts: ts++, state_key: stateKey });
}

function receipt(eventId: string, type: string, userId: string) {
  return new MatrixEvent({ type: "m.receipt", room_id: ROOM, content: { [eventId]: { [type]: { [userId]: { ts: ts++ } } } } });
}

async function roomWithMessages() {
  const client = createClient({ baseUrl: "http://127.0.0.1:1", userId: ALICE });
  const room = new Room(ROOM, client, ALICE);
  await room.addLiveEvents(
    [
      event("$create", "m.room.create", ALICE, { room_version: "11" }, ""),
      event("$alice", "m.room.member", ALICE, { membership: "join" }, ALICE),
      event("$bob", "m.room.member", BOB, { membership: "join" }, BOB),
      event("$m1", "m.room.message", ALICE, { msgtype: "m.text", body: "one" }),
      event("$m2", "m.room.message", ALICE, { msgtype: "m.text", body: "two" }),
    ],
    { addToState: true },
  );
  const tickOf = (eventId: string) => {
    const ids = room.getLiveTimeline().getEvents().map((e) => e.getId()!);
    return tickAt(ids.indexOf(eventId), receiptMarks(ids, memberReceipts(room, ALICE)));
  };
  return { room, tickOf };
}

describe("ticks from a matrix-js-sdk Room", () => {
  it("goes Sent → Delivered → Seen as bob's receipts arrive", async () => {
    const { room, tickOf } = await roomWithMessages();
    expect([tickOf("$m1"), tickOf("$m2")]).toEqual(["Sent", "Sent"]);
    room.addReceipt(receipt("$m1", DELIVERED_RECEIPT, BOB));
    expect([tickOf("$m1"), tickOf("$m2")]).toEqual(["Delivered", "Sent"]);
    room.addReceipt(receipt("$m2", DELIVERED_RECEIPT, BOB));
    room.addReceipt(receipt("$m1", "m.read", BOB));
    expect([tickOf("$m1"), tickOf("$m2")]).toEqual(["Seen", "Delivered"]);
    room.addReceipt(receipt("$m2", "m.read", BOB));
    expect([tickOf("$m1"), tickOf("$m2")]).toEqual(["Seen", "Seen"]);
  });

  it("does not count one's own receipts nor the read receipt the SDK synthesises for bob's own message", async () => {
    const { room, tickOf } = await roomWithMessages();
    room.addReceipt(receipt("$m2", "m.read", ALICE));
    // A message from bob makes the SDK synthesise "bob read up to here"; that is not a real receipt.
    await room.addLiveEvents([event("$b1", "m.room.message", BOB, { msgtype: "m.text", body: "hi" })], { addToState: false });
    expect(room.getReadReceiptForUserId(BOB, false)?.eventId).toBe("$b1");
    expect(tickOf("$m2")).toBe("Sent");
  });
});
