// summarizeRoom against matrix-js-sdk's own Room model (no network: events are added directly).
import { describe, expect, it } from "vitest";
import { createClient, MatrixEvent, NotificationCountType, Room } from "matrix-js-sdk";
import { summarizeRoom } from "../../src/rooms/summary";

const ME = "@me:hs";
const BOB = "@bob:hs";
let ts = 1000;

function event(type: string, sender: string, content: Record<string, unknown>, stateKey?: string) {
  return new MatrixEvent({ type, sender, content, state_key: stateKey, event_id: `$${ts}`, origin_server_ts: ts++, room_id: "!r:hs" });
}

async function roomWith(events: MatrixEvent[], membership = "join") {
  const client = createClient({ baseUrl: "http://localhost", userId: ME });
  const room = new Room("!r:hs", client, ME);
  await room.addLiveEvents(events, { addToState: true });
  room.updateMyMembership(membership); // what the SDK's sync does
  return room;
}

const joined = (userId: string, name: string) => event("m.room.member", userId, { membership: "join", displayname: name }, userId);

describe("summarizeRoom", () => {
  it("names a DM after the other person and previews the latest message", async () => {
    const room = await roomWith([
      event("m.room.create", ME, { room_version: "12" }, ""),
      joined(ME, "Me"),
      joined(BOB, "Bob"),
      event("m.room.message", BOB, { msgtype: "m.text", body: "hi there" }),
      event("m.reaction", ME, { "m.relates_to": { rel_type: "m.annotation", event_id: "$1", key: "👍" } }),
    ]);
    room.setUnreadNotificationCount(NotificationCountType.Total, 3);
    room.setUnreadNotificationCount(NotificationCountType.Highlight, 1);
    const summary = summarizeRoom(room, ME, new Map([["!r:hs", BOB]]));
    expect(summary).toMatchObject({ name: "Bob", isDirect: true, partnerId: BOB, preview: "Bob: hi there", unread: 3, highlights: 1, membership: "join" });
    expect(summary.lastActive).toBeGreaterThan(0);
  });

  it("prefers an explicit room name and says 'You' for one's own messages", async () => {
    const room = await roomWith([
      event("m.room.create", ME, { room_version: "12" }, ""),
      joined(ME, "Me"),
      event("m.room.name", ME, { name: "Team" }, ""),
      event("m.room.message", ME, { msgtype: "m.image", body: "cat.png", url: "mxc://hs/cat" }),
    ]);
    const summary = summarizeRoom(room, ME, new Map());
    expect(summary).toMatchObject({ name: "Team", isDirect: false, preview: "You: Image", unread: 0 });
  });

  it("explains an encrypted message that could not be decrypted", async () => {
    const room = await roomWith([
      event("m.room.create", ME, {}, ""),
      joined(ME, "Me"),
      joined(BOB, "Bob"),
      event("m.room.name", ME, { name: "Secret" }, ""),
      event("m.room.encrypted", BOB, { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "xyz", session_id: "s" }),
    ]);
    expect(summarizeRoom(room, ME, new Map()).preview).toBe("Bob: Encrypted message");
  });

  it("shows who invited, and treats an is_direct invite as a DM with the inviter", async () => {
    const room = await roomWith(
      [
        joined(BOB, "Bob"),
        event("m.room.member", BOB, { membership: "invite", is_direct: true }, ME),
      ],
      "invite",
    );
    const summary = summarizeRoom(room, ME, new Map());
    expect(summary).toMatchObject({ membership: "invite", invitedBy: "Bob", isDirect: true, partnerId: BOB, name: "Bob" });
  });

  it("names an invite whose stripped state lacks the inviter's member event after the inviter", async () => {
    const room = await roomWith([event("m.room.member", BOB, { membership: "invite", is_direct: true }, ME)], "invite");
    room.client.store.storeUser(Object.assign(new (await import("matrix-js-sdk")).User(BOB), { displayName: "Bob B" }));
    expect(summarizeRoom(room, ME, new Map()).name).toBe("Bob B");
    const unknown = await roomWith([event("m.room.member", BOB, { membership: "invite" }, ME)], "invite");
    expect(summarizeRoom(unknown, ME, new Map()).name).toBe(BOB);
  });

  it("does not call a name given at creation a rename", async () => {
    const room = await roomWith([
      event("m.room.create", ME, { room_version: "12" }, ""),
      joined(ME, "Me"),
      event("m.room.name", ME, { name: "Team" }, ""),
      event("m.room.topic", ME, { topic: "plans" }, ""),
    ]);
    expect(summarizeRoom(room, ME, new Map()).preview).toBe("You created the room");
    await room.addLiveEvents([event("m.room.message", ME, { msgtype: "m.text", body: "welcome" })], { addToState: true });
    expect(summarizeRoom(room, ME, new Map()).preview).toBe("You: welcome");
  });

  it("recognises a two-person room whose invite was flagged is_direct, without m.direct", async () => {
    const invite = event("m.room.member", ME, { membership: "invite", is_direct: true, displayname: "Bob" }, BOB);
    const room = await roomWith([event("m.room.create", ME, {}, ""), joined(ME, "Me"), invite]);
    expect(summarizeRoom(room, ME, new Map())).toMatchObject({ isDirect: true, partnerId: BOB });
    const group = await roomWith([event("m.room.create", ME, {}, ""), joined(ME, "Me"), joined(BOB, "Bob")]);
    expect(summarizeRoom(group, ME, new Map()).isDirect).toBe(false);
  });
});
