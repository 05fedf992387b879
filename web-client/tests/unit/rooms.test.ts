import { describe, expect, it } from "vitest";
import { previewText, isPreviewable } from "../../src/rooms/preview";
import { directPartners, readDirect, withDirectRoom, directRoomsWith } from "../../src/rooms/direct";
import { aliasLocalpart, createRoomOptions, dmOptions, parseUserIds, MEGOLM } from "../../src/rooms/create";
import { filterSummaries, initial, sortSummaries, type RoomSummary } from "../../src/rooms/summary";
import { errorMessage } from "../../src/rooms/errors";

describe("preview", () => {
  const message = (content: Record<string, unknown>) => ({ type: "m.room.message", content, senderName: "Alice" });

  it("shows the sender and the first line of text", () => {
    expect(previewText(message({ msgtype: "m.text", body: "hi\nthere" }))).toBe("Alice: hi");
    expect(previewText(message({ msgtype: "m.emote", body: "waves" }))).toBe("* Alice waves");
  });

  it("skips a reply's quoted fallback", () => {
    expect(previewText(message({ msgtype: "m.text", body: "> <@bob:hs> question\n\nanswer" }))).toBe("Alice: answer");
  });

  it("names media instead of showing file names", () => {
    expect(previewText(message({ msgtype: "m.image", body: "IMG_1.png" }))).toBe("Alice: Image");
    expect(previewText(message({ msgtype: "m.file", body: "a.pdf" }))).toBe("Alice: File");
    expect(previewText(message({ msgtype: "m.audio", body: "a.ogg", "org.matrix.msc3245.voice": {} }))).toBe("Alice: Voice message");
    expect(previewText(message({ msgtype: "m.audio", body: "song.mp3" }))).toBe("Alice: Audio");
  });

  it("says when a message can't be decrypted or was deleted", () => {
    expect(previewText({ type: "m.room.encrypted", content: {}, senderName: "Bob" })).toBe("Bob: Encrypted message");
    expect(previewText({ ...message({}), undecryptable: true })).toBe("Alice: Encrypted message");
    expect(previewText({ ...message({}), redacted: true })).toBe("Alice: Message deleted");
  });

  it("describes membership changes", () => {
    const member = (membership: string, stateKeyName: string) =>
      previewText({ type: "m.room.member", content: { membership }, senderName: "Alice", stateKeyName });
    expect(member("join", "Bob")).toBe("Bob joined");
    expect(member("invite", "Bob")).toBe("Alice invited Bob");
    expect(member("leave", "Alice")).toBe("Alice left");
    expect(member("leave", "Bob")).toBe("Alice removed Bob");
    expect(member("ban", "Bob")).toBe("Alice banned Bob");
    const after = (prevMembership: string, stateKeyName: string) =>
      previewText({ type: "m.room.member", content: { membership: "leave" }, prevMembership, senderName: "Alice", stateKeyName });
    expect(after("ban", "Bob")).toBe("Alice unbanned Bob");
    expect(after("invite", "Alice")).toBe("Alice declined the invite");
    expect(after("invite", "Bob")).toBe("Alice withdrew Bob's invite");
  });

  it("ignores edits, reactions and unknown events", () => {
    expect(isPreviewable({ ...message({ body: "x" }), relationOnly: true })).toBe(false);
    expect(isPreviewable({ type: "m.reaction", content: {}, senderName: "A" })).toBe(false);
    expect(isPreviewable({ type: "m.room.power_levels", content: {}, senderName: "A" })).toBe(false);
    expect(isPreviewable(message({ body: "x" }))).toBe(true);
  });
});

describe("m.direct", () => {
  it("ignores malformed content", () => {
    expect(readDirect(null)).toEqual({});
    expect(readDirect({ "@bob:hs": ["!a:hs", 3], "@x:hs": "nope" })).toEqual({ "@bob:hs": ["!a:hs"] });
  });

  it("maps rooms to partners and adds rooms once", () => {
    const content = withDirectRoom({}, "@bob:hs", "!a:hs");
    expect(withDirectRoom(content, "@bob:hs", "!a:hs")).toBe(content);
    const two = withDirectRoom(content, "@bob:hs", "!b:hs");
    expect(directRoomsWith(two, "@bob:hs")).toEqual(["!a:hs", "!b:hs"]);
    expect(directPartners(two).get("!b:hs")).toBe("@bob:hs");
    expect(content["@bob:hs"]).toEqual(["!a:hs"]);
  });
});

describe("room creation", () => {
  const form = { name: " Team ", topic: "", visibility: "private" as const, alias: "", encrypted: true, invite: ["@bob:hs"] };

  it("makes private rooms invite-only and encrypted by default", () => {
    const options = createRoomOptions(form);
    expect(options).toMatchObject({ name: "Team", preset: "private_chat", visibility: "private", invite: ["@bob:hs"] });
    expect(options.topic).toBeUndefined();
    expect(options.initial_state).toEqual([{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }]);
    expect(createRoomOptions({ ...form, encrypted: false }).initial_state).toEqual([]);
  });

  it("publishes public rooms with their address and without encryption", () => {
    const options = createRoomOptions({ ...form, visibility: "public", alias: "#Team Chat:hs" });
    expect(options).toMatchObject({ preset: "public_chat", visibility: "public", room_alias_name: "team-chat" });
    expect(options.initial_state).toEqual([]);
    expect(createRoomOptions({ ...form, alias: "private-has-none" }).room_alias_name).toBeUndefined();
  });

  it("creates DMs as trusted private chats flagged direct", () => {
    expect(dmOptions("@bob:hs", true)).toMatchObject({ preset: "trusted_private_chat", is_direct: true, invite: ["@bob:hs"] });
    expect(dmOptions("@bob:hs", false).initial_state).toEqual([]);
  });

  it("parses user IDs", () => {
    expect(parseUserIds("@a:hs, @b:hs\n@a:hs bob")).toEqual({ ids: ["@a:hs", "@b:hs"], invalid: ["bob"] });
    expect(aliasLocalpart("  #My Room!:server ")).toBe("my-room");
  });
});

describe("room list order and filter", () => {
  const summary = (patch: Partial<RoomSummary>): RoomSummary => ({
    roomId: "!x:hs", name: "x", isDirect: false, preview: "", lastActive: 0, unread: 0, highlights: 0,
    membership: "join", tags: [], ...patch,
  });
  const rooms = [
    summary({ roomId: "!old", name: "Old", lastActive: 1 }),
    summary({ roomId: "!new", name: "Café", lastActive: 3 }),
    summary({ roomId: "!inv", name: "Invite", lastActive: 0, membership: "invite" }),
    summary({ roomId: "!low", name: "Low", lastActive: 9, tags: ["m.lowpriority"] }),
    summary({ roomId: "!dm", name: "Bob", lastActive: 2, isDirect: true, partnerId: "@bob:hs" }),
  ];

  it("puts invites first, then latest activity, low priority last", () => {
    expect(sortSummaries(rooms).map((room) => room.roomId)).toEqual(["!inv", "!new", "!dm", "!old", "!low"]);
  });

  it("filters by name without case or accents, and by DM partner ID", () => {
    expect(filterSummaries(rooms, "cafe").map((room) => room.roomId)).toEqual(["!new"]);
    expect(filterSummaries(rooms, "@BOB").map((room) => room.roomId)).toEqual(["!dm"]);
    expect(filterSummaries(rooms, "  ")).toHaveLength(5);
  });

  it("takes the avatar letter from the name", () => {
    expect(initial("#general")).toBe("G");
    expect(initial("émile")).toBe("É");
    expect(initial("")).toBe("?");
  });
});

describe("errorMessage", () => {
  it("prefers the server's error text", () => {
    expect(errorMessage({ data: { errcode: "M_FORBIDDEN", error: "You don't have permission to kick" } })).toBe("You don't have permission to kick");
    expect(errorMessage({ errcode: "M_FORBIDDEN", data: {} })).toBe("You don't have permission to do that.");
    expect(errorMessage(new Error("boom"))).toBe("boom");
  });
});
