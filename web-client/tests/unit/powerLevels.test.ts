import { describe, expect, it } from "vitest";
import {
  canBan,
  canInvite,
  canKick,
  canMute,
  canSendState,
  canSetPermission,
  canSetUserLevel,
  canUnban,
  canUnmute,
  eventLevel,
  roomCreators,
  isMuted,
  mutedLevel,
  roleName,
  sendMessageLevel,
  unmutedLevel,
  userLevel,
  withPermission,
  withUserLevel,
  type PowerLevelsContent,
} from "../../src/rooms/powerLevels";

const ADMIN = "@alice:hs";
const MOD = "@mod:hs";
const BOB = "@bob:hs";
const MOD2 = "@mod2:hs";

// What a private_chat room created by alice gets, plus two moderators.
const room: PowerLevelsContent = {
  ban: 50,
  kick: 50,
  invite: 0,
  redact: 50,
  events_default: 0,
  state_default: 50,
  users_default: 0,
  events: { "m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100 },
  users: { [ADMIN]: 100, [MOD]: 50, [MOD2]: 50 },
};

describe("levels", () => {
  it("reads user levels with users_default as the fallback", () => {
    expect(userLevel(room, ADMIN)).toBe(100);
    expect(userLevel(room, BOB)).toBe(0);
    expect(userLevel({ ...room, users_default: 10 }, BOB)).toBe(10);
  });

  it("uses the spec's defaults for missing keys", () => {
    expect(eventLevel({}, "m.room.topic", true)).toBe(50);
    expect(eventLevel({}, "m.room.message", false)).toBe(0);
    expect(canKick({ users: { [ADMIN]: 50 } }, ADMIN, BOB).ok).toBe(true);
    expect(canKick({ users: { [ADMIN]: 49 } }, ADMIN, BOB).ok).toBe(false);
  });

  it("names roles", () => {
    expect(roleName(room, 100)).toBe("Admin");
    expect(roleName(room, 50)).toBe("Moderator");
    expect(roleName(room, 0)).toBe("Default");
    expect(roleName(room, -1)).toBe("Muted");
    expect(roleName(room, 20)).toBe("Custom (20)");
  });
});

describe("kick and ban", () => {
  it("needs the action's level and a target strictly below oneself", () => {
    expect(canKick(room, ADMIN, BOB)).toEqual({ ok: true });
    expect(canKick(room, MOD, BOB).ok).toBe(true);
    expect(canKick(room, MOD, MOD2)).toEqual({ ok: false, reason: "Their power level is not lower than yours" });
    expect(canKick(room, MOD, ADMIN).ok).toBe(false);
    expect(canKick(room, BOB, MOD).ok).toBe(false);
    expect(canKick(room, BOB, "@carol:hs")).toEqual({ ok: false, reason: "Kick needs power level 50" });
    expect(canKick(room, ADMIN, ADMIN).ok).toBe(false);
  });

  it("uses the ban level for bans, independently of the kick level", () => {
    const strict = { ...room, ban: 100 };
    expect(canBan(strict, MOD, BOB).ok).toBe(false);
    expect(canKick(strict, MOD, BOB).ok).toBe(true);
    expect(canBan(strict, ADMIN, MOD).ok).toBe(true);
  });

  it("needs both the ban and the kick level to unban", () => {
    expect(canUnban(room, MOD, BOB).ok).toBe(true);
    expect(canUnban({ ...room, kick: 100 }, MOD, BOB).ok).toBe(false);
    expect(canUnban({ ...room, ban: 100 }, MOD, BOB).ok).toBe(false);
  });

  it("lets anyone at the invite level invite", () => {
    expect(canInvite(room, BOB).ok).toBe(true);
    expect(canInvite({ ...room, invite: 50 }, BOB).ok).toBe(false);
  });
});

describe("state events", () => {
  it("uses the event's level, else state_default", () => {
    expect(canSendState(room, MOD, "m.room.name").ok).toBe(true);
    expect(canSendState(room, BOB, "m.room.name").ok).toBe(false);
    expect(canSendState(room, MOD, "m.room.power_levels").ok).toBe(false);
    expect(canSendState(room, MOD, "m.room.topic").ok).toBe(true); // state_default 50
    expect(canSendState(room, BOB, "m.room.topic").ok).toBe(false);
  });
});

describe("setting a member's level", () => {
  it("allows an admin to promote up to their own level", () => {
    expect(canSetUserLevel(room, ADMIN, BOB, 50).ok).toBe(true);
    expect(canSetUserLevel(room, ADMIN, BOB, 100).ok).toBe(true);
    expect(canSetUserLevel(room, ADMIN, BOB, 101).ok).toBe(false);
  });

  it("refuses without the power to send m.room.power_levels", () => {
    const verdict = canSetUserLevel(room, MOD, BOB, 10);
    expect(verdict).toEqual({ ok: false, reason: "Changing roles needs power level 100" });
  });

  it("refuses to change an equal or higher member, but allows lowering oneself", () => {
    const twoAdmins = withUserLevel(room, MOD, 100);
    expect(canSetUserLevel(twoAdmins, ADMIN, MOD, 0).ok).toBe(false);
    expect(canSetUserLevel(twoAdmins, ADMIN, ADMIN, 50).ok).toBe(true);
  });

  it("allows a moderator with the power to set levels only up to 50", () => {
    const open = { ...room, events: { ...room.events, "m.room.power_levels": 50 } };
    expect(canSetUserLevel(open, MOD, BOB, 50).ok).toBe(true);
    expect(canSetUserLevel(open, MOD, BOB, 100).ok).toBe(false);
    expect(canSetUserLevel(open, MOD, MOD2, 0).ok).toBe(false);
  });
});

describe("mute", () => {
  it("mutes below the level needed to send messages, in plain and encrypted rooms", () => {
    expect(sendMessageLevel(room)).toBe(0);
    expect(mutedLevel(room)).toBe(-1);
    const muted = withUserLevel(room, BOB, mutedLevel(room));
    expect(isMuted(muted, BOB)).toBe(true);
    expect(isMuted(room, BOB)).toBe(false);
    const strict = { ...room, events: { ...room.events, "m.room.encrypted": 10 } };
    expect(sendMessageLevel(strict)).toBe(10);
    expect(isMuted(strict, BOB)).toBe(true);
  });

  it("applies the same power rules as any level change", () => {
    expect(canMute(room, ADMIN, BOB).ok).toBe(true);
    expect(canMute(room, MOD, BOB).ok).toBe(false); // power_levels needs 100 here
    expect(canMute(room, ADMIN, ADMIN).ok).toBe(false);
    const muted = withUserLevel(room, BOB, mutedLevel(room));
    expect(canMute(muted, ADMIN, BOB).ok).toBe(false);
    expect(canUnmute(muted, ADMIN, BOB).ok).toBe(true);
    expect(canUnmute(room, ADMIN, BOB).ok).toBe(false);
  });

  it("unmutes to users_default and drops the entry", () => {
    const muted = withUserLevel(room, BOB, mutedLevel(room));
    expect(muted.users?.[BOB]).toBe(-1);
    const back = withUserLevel(muted, BOB, unmutedLevel(muted));
    expect(BOB in (back.users ?? {})).toBe(false);
    expect(room.users?.[BOB]).toBeUndefined(); // the original is not modified
  });
});

describe("permissions", () => {
  it("changes a required level only within one's own level", () => {
    expect(canSetPermission(room, ADMIN, { kind: "level", key: "kick" }, 100).ok).toBe(true);
    expect(canSetPermission(room, MOD, { kind: "level", key: "kick" }, 0).ok).toBe(false);
    const open = { ...room, events: { ...room.events, "m.room.power_levels": 50 } };
    expect(canSetPermission(open, MOD, { kind: "level", key: "kick" }, 0).ok).toBe(true);
    expect(canSetPermission(open, MOD, { kind: "level", key: "kick" }, 100).ok).toBe(false);
    expect(canSetPermission(open, MOD, { kind: "event", eventType: "m.room.history_visibility", isState: true }, 50).ok).toBe(false);
  });

  it("writes event levels under events and others at the top level", () => {
    const changed = withPermission(room, { kind: "event", eventType: "m.room.topic", isState: true }, 100);
    expect(changed.events?.["m.room.topic"]).toBe(100);
    expect(changed.events?.["m.room.name"]).toBe(50);
    expect(withPermission(room, { kind: "level", key: "invite" }, 50).invite).toBe(50);
  });
});

describe("room creators (room version 12)", () => {
  const creators = roomCreators("@alice:hs", { room_version: "12", additional_creators: ["@carol:hs", 5] });
  const v12 = { ...room, users: { [MOD]: 50 }, creators };

  it("are the create event's sender and additional creators, from version 12 on", () => {
    expect(creators).toEqual(["@alice:hs", "@carol:hs"]);
    expect(roomCreators("@alice:hs", { room_version: "11" })).toEqual([]);
    expect(roomCreators("@alice:hs", {})).toEqual([]);
    expect(roomCreators("@alice:hs", { room_version: "org.matrix.hydra.11" })).toEqual(["@alice:hs"]);
  });

  it("have unlimited power that nobody can change", () => {
    expect(userLevel(v12, ADMIN)).toBe(Infinity);
    expect(roleName(v12, userLevel(v12, ADMIN))).toBe("Creator");
    expect(canKick(v12, ADMIN, MOD).ok).toBe(true);
    expect(canSetUserLevel(v12, ADMIN, BOB, 100).ok).toBe(true);
    expect(canSetPermission(v12, ADMIN, { kind: "level", key: "ban" }, 100).ok).toBe(true);
    expect(canKick(v12, "@carol:hs", ADMIN)).toEqual({ ok: false, reason: "Room creators can't be removed" });
    expect(canSetUserLevel(v12, "@carol:hs", ADMIN, 0).ok).toBe(false);
    expect(canSetUserLevel(v12, ADMIN, ADMIN, 50).ok).toBe(false);
  });

  it("never end up in the content that is sent", () => {
    const content = withUserLevel(v12, BOB, 50);
    expect("creators" in content).toBe(false);
    expect(content.users).toEqual({ [MOD]: 50, [BOB]: 50 });
    expect("creators" in withPermission(v12, { kind: "level", key: "kick" }, 0)).toBe(false);
  });
});
