import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  ClientEvent,
  MatrixEvent,
  MatrixEventEvent,
  NotificationCountType,
  RoomEvent,
  SyncState,
  type MatrixClient,
  type Room,
} from "matrix-js-sdk";
import { selectedRoomId } from "../../src/state/app";
import { describeEvent, notificationText, watchForNotifications } from "../../src/notify/desktop";
import { isRoomMuted } from "../../src/notify/mute";
import { notificationsSwitchedOn } from "../../src/notify/permission";
import { titleWithCount, totalUnread } from "../../src/notify/unread";
import { decodeBase64Url, pusherFor, sameKey } from "../../src/notify/webPush";
import { roomIdFromHash, roomUrl } from "../../src/notify/openRoom";
import { pushNotificationText } from "../../src/notify/pushPayload";

const ME = "@alice:hs.test";
const BOB = "@bob:hs.test";
const ROOM = "!room:hs.test";

function message(body: string, sender = BOB, extra: Record<string, unknown> = {}): MatrixEvent {
  return new MatrixEvent({
    type: "m.room.message",
    sender,
    room_id: ROOM,
    event_id: `$${Math.random()}`,
    origin_server_ts: Date.now(),
    content: { msgtype: "m.text", body, ...extra },
  });
}

function fakeRoom(name: string, opts: { membership?: string; unread?: number; roomId?: string } = {}): Room {
  return {
    roomId: opts.roomId ?? ROOM,
    name,
    getMyMembership: () => opts.membership ?? "join",
    getUnreadNotificationCount: (type?: NotificationCountType) => (type === NotificationCountType.Total ? (opts.unread ?? 0) : 0),
    getMember: (userId: string) => (userId === BOB ? { name: "Bob" } : null),
  } as unknown as Room;
}

/** What the notifier uses of a MatrixClient: events, the user, push rules and actions. */
class FakeClient extends EventEmitter {
  synced = false;
  notify = true;
  roomRules = new Map<string, { actions: string[]; enabled?: boolean }>();
  getUserId = () => ME;
  isInitialSyncComplete = () => this.synced;
  getPushActionsForEvent = vi.fn(() => ({ notify: this.notify, tweaks: {} }));
  getRoomPushRule = (_scope: string, roomId: string) => this.roomRules.get(roomId);
}
const asClient = (fake: FakeClient) => fake as unknown as MatrixClient;

let visibility: DocumentVisibilityState = "visible";
const shown: { title: string; options: NotificationOptions; instance: { onclick: (() => void) | null; close: () => void } }[] = [];

class RecordingNotification {
  static permission: NotificationPermission = "granted";
  static requestPermission = vi.fn(async () => RecordingNotification.permission);
  onclick: (() => void) | null = null;
  close = vi.fn();
  constructor(title: string, options: NotificationOptions) {
    shown.push({ title, options, instance: this });
  }
}

beforeEach(() => {
  shown.length = 0;
  visibility = "visible";
  vi.spyOn(document, "visibilityState", "get").mockImplementation(() => visibility);
  vi.stubGlobal("Notification", RecordingNotification);
  RecordingNotification.permission = "granted";
  notificationsSwitchedOn.value = true;
  selectedRoomId.value = null;
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

function live(fake: FakeClient, event: MatrixEvent, room: Room, liveEvent = true, toStart = false) {
  fake.emit(RoomEvent.Timeline, event, room, toStart, false, { liveEvent });
}

describe("browser notifications", () => {
  it("notifies of a live message from someone else while the tab is hidden", () => {
    const fake = new FakeClient();
    const stop = watchForNotifications(asClient(fake));
    fake.emit(ClientEvent.Sync, SyncState.Prepared);
    visibility = "hidden";
    live(fake, message("hello there"), fakeRoom("Project"));
    expect(shown).toHaveLength(1);
    expect(shown[0].title).toBe("Project");
    expect(shown[0].options.body).toBe("Bob: hello there");
    expect(shown[0].options.tag).toBe(ROOM);
    stop();
  });

  it("stays quiet while the tab is visible, for own messages, history and the initial sync", () => {
    const fake = new FakeClient();
    const stop = watchForNotifications(asClient(fake));
    visibility = "hidden";
    live(fake, message("from the initial sync"), fakeRoom("Project")); // before PREPARED
    fake.emit(ClientEvent.Sync, SyncState.Prepared);
    live(fake, message("mine", ME), fakeRoom("Project"));
    live(fake, message("backfill"), fakeRoom("Project"), false, true);
    live(fake, message("not live"), fakeRoom("Project"), false);
    visibility = "visible";
    live(fake, message("seen already"), fakeRoom("Project"));
    expect(shown).toHaveLength(0);
    stop();
  });

  it("follows the push rules, per-room mute, the permission and the user's switch", () => {
    const fake = new FakeClient();
    fake.synced = true;
    const stop = watchForNotifications(asClient(fake));
    visibility = "hidden";

    fake.notify = false;
    live(fake, message("rules say no"), fakeRoom("Project"));
    fake.notify = true;

    fake.roomRules.set(ROOM, { actions: ["dont_notify"] });
    live(fake, message("muted room"), fakeRoom("Project"));
    fake.roomRules.clear();

    RecordingNotification.permission = "denied";
    live(fake, message("no permission"), fakeRoom("Project"));
    RecordingNotification.permission = "granted";

    notificationsSwitchedOn.value = false;
    live(fake, message("switched off"), fakeRoom("Project"));
    notificationsSwitchedOn.value = true;

    expect(shown).toHaveLength(0);
    live(fake, message("finally"), fakeRoom("Project"));
    expect(shown.map((n) => n.options.body)).toEqual(["Bob: finally"]);
    stop();
    live(fake, message("after stop"), fakeRoom("Project"));
    expect(shown).toHaveLength(1);
  });

  it("waits for an encrypted event to be decrypted", () => {
    const fake = new FakeClient();
    fake.synced = true;
    const stop = watchForNotifications(asClient(fake));
    visibility = "hidden";
    const event = message("secret");
    vi.spyOn(event, "shouldAttemptDecryption").mockReturnValue(true);
    live(fake, event, fakeRoom("Project"));
    expect(shown).toHaveLength(0);
    event.emit(MatrixEventEvent.Decrypted, event);
    expect(shown.map((n) => n.options.body)).toEqual(["Bob: secret"]);
    stop();
  });

  it("raises nothing for a message decrypted after sign-out", () => {
    const fake = new FakeClient();
    fake.synced = true;
    const stop = watchForNotifications(asClient(fake));
    visibility = "hidden";
    const event = message("secret");
    vi.spyOn(event, "shouldAttemptDecryption").mockReturnValue(true);
    live(fake, event, fakeRoom("Project"));
    stop(); // signed out while it was being decrypted
    event.emit(MatrixEventEvent.Decrypted, event);
    expect(shown).toHaveLength(0);
  });

  it("opens the room when clicked", () => {
    const fake = new FakeClient();
    fake.synced = true;
    const stop = watchForNotifications(asClient(fake));
    visibility = "hidden";
    const focus = vi.spyOn(window, "focus").mockImplementation(() => undefined);
    live(fake, message("click me"), fakeRoom("Project"));
    shown[0].instance.onclick?.();
    expect(focus).toHaveBeenCalled();
    expect(selectedRoomId.value).toBe(ROOM);
    expect(shown[0].instance.close).toHaveBeenCalled();
    stop();
  });
});

describe("notification text", () => {
  it("names the sender unless the room is named after them (a DM)", () => {
    expect(notificationText(message("hi"), fakeRoom("Bob"), ME)).toEqual({ title: "Bob", body: "hi" });
    expect(notificationText(message("hi"), fakeRoom("Team"), ME)).toEqual({ title: "Team", body: "Bob: hi" });
  });

  it("describes media and undecryptable messages", () => {
    expect(describeEvent(message("cat.png", BOB, { msgtype: "m.image" }), ME)).toBe("sent an image");
    expect(describeEvent(message("voice.ogg", BOB, { msgtype: "m.audio" }), ME)).toBe("sent a voice message");
    expect(describeEvent(message("report.pdf", BOB, { msgtype: "m.file" }), ME)).toBe("sent a file: report.pdf");
    const encrypted = new MatrixEvent({ type: "m.room.encrypted", sender: BOB, room_id: ROOM, content: { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "x" } });
    expect(describeEvent(encrypted, ME)).toBe("Encrypted message");
  });

  it("turns a Web Push payload into a notification", () => {
    expect(pushNotificationText({ room_id: ROOM, room_name: "Team", sender: BOB, sender_display_name: "Bob", content: { msgtype: "m.text", body: "yo" } })).toEqual({ title: "Team", body: "Bob: yo" });
    expect(pushNotificationText({ room_id: ROOM, sender: BOB, sender_display_name: "Bob", type: "m.room.encrypted" })).toEqual({ title: "Bob", body: "New message" });
    expect(pushNotificationText({ sender: BOB, type: "m.room.member", content: { membership: "invite" } })).toEqual({ title: BOB, body: "invited you" });
  });
});

describe("unread count", () => {
  it("sums joined rooms' notification counts and invites", () => {
    const fake = {
      getRooms: () => [
        fakeRoom("a", { unread: 2, roomId: "!a" }),
        fakeRoom("b", { unread: 3, roomId: "!b" }),
        fakeRoom("c", { membership: "invite", roomId: "!c" }),
        fakeRoom("d", { membership: "leave", unread: 9, roomId: "!d" }),
      ],
    } as unknown as MatrixClient;
    expect(totalUnread(fake)).toBe(6);
  });

  it("puts the count in front of the title, replacing an earlier one", () => {
    expect(titleWithCount("Chat", 3)).toBe("(3) Chat");
    expect(titleWithCount("(3) Chat", 12)).toBe("(12) Chat");
    expect(titleWithCount("(12) Chat", 0)).toBe("Chat");
    expect(titleWithCount("Chat", 0)).toBe("Chat");
  });
});

describe("per-room mute", () => {
  it("reads a dont_notify or empty room rule as muted", () => {
    const fake = new FakeClient();
    expect(isRoomMuted(ROOM, asClient(fake))).toBe(false);
    fake.roomRules.set(ROOM, { actions: ["dont_notify"] });
    expect(isRoomMuted(ROOM, asClient(fake))).toBe(true);
    fake.roomRules.set(ROOM, { actions: [] });
    expect(isRoomMuted(ROOM, asClient(fake))).toBe(true);
    fake.roomRules.set(ROOM, { actions: ["notify"] });
    expect(isRoomMuted(ROOM, asClient(fake))).toBe(false);
    fake.roomRules.set(ROOM, { actions: ["dont_notify"], enabled: false });
    expect(isRoomMuted(ROOM, asClient(fake))).toBe(false);
  });
});

describe("Web Push", () => {
  it("decodes the server's URL-safe base64 VAPID key", () => {
    const bytes = new Uint8Array([4, 250, 251, 252, 253, 254, 255, 0, 1]);
    const urlSafe = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    expect(Array.from(decodeBase64Url(urlSafe))).toEqual(Array.from(bytes));
    expect(sameKey(bytes.buffer, decodeBase64Url(urlSafe))).toBe(true);
    expect(sameKey(new Uint8Array([1]).buffer, bytes)).toBe(false);
    expect(sameKey(null, bytes)).toBe(false);
  });

  it("registers the subscription the way docs/push.md asks", () => {
    const pusher = pusherFor({ endpoint: "https://push.example/abc", keys: { p256dh: "BPUB", auth: "AUTH" } }, "Web (Chrome)", "en");
    expect(pusher).toMatchObject({
      kind: "webpush",
      pushkey: "BPUB",
      data: { url: "https://push.example/abc", auth: "AUTH" },
      device_display_name: "Web (Chrome)",
      lang: "en",
    });
    expect(() => pusherFor({ endpoint: "https://push.example/abc", keys: {} }, "x", "en")).toThrow();
  });
});

describe("room links", () => {
  it("round-trips a room ID through the URL the service worker opens", () => {
    const url = roomUrl("!abc:hs.test");
    expect(roomIdFromHash(url.slice(1))).toBe("!abc:hs.test");
    expect(roomIdFromHash("#/settings")).toBeNull();
    expect(roomIdFromHash("")).toBeNull();
  });
});
