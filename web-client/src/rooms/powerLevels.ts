/**
 * Who may do what in a room, from the content of its m.room.power_levels event.
 * Pure functions, so the settings screens can disable a control (and say why)
 * before the server would refuse the request.
 * spec: client-server-api/_index.md#mroompower_levels and the room version's
 * authorization rules (rooms/v11.md#authorization-rules).
 */

export interface PowerLevelsContent {
  ban?: number;
  kick?: number;
  invite?: number;
  redact?: number;
  events_default?: number;
  state_default?: number;
  users_default?: number;
  events?: Record<string, number>;
  users?: Record<string, number>;
  notifications?: Record<string, number>;
}

/**
 * The content plus what the room's creation says about it: in room version 12 and
 * later the creators have an infinitely high level that no power_levels event can
 * change (spec: rooms/v12.md, "room creators").  `creators` is empty for older rooms.
 * Never sent: withUserLevel/withPermission return plain content.
 */
export type RoomPowerLevels = PowerLevelsContent & { creators?: readonly string[] };

/** A yes/no answer with the reason shown as the disabled control's title. */
export type Verdict = { ok: true } | { ok: false; reason: string };
const YES: Verdict = { ok: true };
const no = (reason: string): Verdict => ({ ok: false, reason });

export const ADMIN = 100;
export const MODERATOR = 50;

// spec defaults when the key (or the whole event) is absent.  Without any
// m.room.power_levels event state_default is 0, but a room always has one after
// creation, so the "with event" defaults are the useful ones here.
const num = (value: unknown, fallback: number) => (typeof value === "number" && Number.isFinite(value) ? value : fallback);

export function userLevel(pl: RoomPowerLevels, userId: string): number {
  if (isCreator(pl, userId)) return Infinity;
  return num(pl.users?.[userId], num(pl.users_default, 0));
}

export function isCreator(pl: RoomPowerLevels, userId: string): boolean {
  return pl.creators?.includes(userId) ?? false;
}

/** Who counts as a creator, from the m.room.create event (none before room version 12). */
export function roomCreators(createSender: string | undefined, createContent: Record<string, unknown>): string[] {
  const version = String(createContent.room_version ?? "1");
  const numeric = /^\d+$/.test(version) ? Number(version) : NaN;
  // Unknown versions: the experimental name of v12 was "org.matrix.hydra.11".
  const infiniteCreators = numeric >= 12 || /hydra/.test(version);
  if (!infiniteCreators || !createSender) return [];
  const additional = Array.isArray(createContent.additional_creators)
    ? createContent.additional_creators.filter((id): id is string => typeof id === "string")
    : [];
  return [createSender, ...additional];
}

export function eventLevel(pl: RoomPowerLevels, eventType: string, isState: boolean): number {
  const specific = pl.events?.[eventType];
  if (typeof specific === "number") return specific;
  return isState ? num(pl.state_default, 50) : num(pl.events_default, 0);
}

export const kickLevel = (pl: RoomPowerLevels) => num(pl.kick, 50);
export const banLevel = (pl: RoomPowerLevels) => num(pl.ban, 50);
export const inviteLevel = (pl: RoomPowerLevels) => num(pl.invite, 0);
export const redactLevel = (pl: RoomPowerLevels) => num(pl.redact, 50);

/**
 * The level a member needs to post messages: the highest of events_default and the
 * levels of m.room.message and m.room.encrypted (what messages are in an encrypted
 * room), so that a member below it can post neither.
 */
export function sendMessageLevel(pl: RoomPowerLevels): number {
  return Math.max(num(pl.events_default, 0), eventLevel(pl, "m.room.message", false), eventLevel(pl, "m.room.encrypted", false));
}

/** A label for a level: Admin (100), Moderator (50), Default (users_default) or the number. */
export function roleName(pl: RoomPowerLevels, level: number): string {
  if (level === Infinity) return "Creator";
  if (level >= ADMIN) return "Admin";
  if (level >= MODERATOR) return "Moderator";
  if (level === num(pl.users_default, 0)) return "Default";
  if (level < sendMessageLevel(pl)) return "Muted";
  return `Custom (${level})`;
}

export function isMuted(pl: RoomPowerLevels, userId: string): boolean {
  return userLevel(pl, userId) < sendMessageLevel(pl);
}

export function canSendState(pl: RoomPowerLevels, me: string, eventType: string): Verdict {
  const needed = eventLevel(pl, eventType, true);
  return userLevel(pl, me) >= needed ? YES : no(`Needs power level ${needed}`);
}

export function canInvite(pl: RoomPowerLevels, me: string): Verdict {
  const needed = inviteLevel(pl);
  return userLevel(pl, me) >= needed ? YES : no(`Inviting needs power level ${needed}`);
}

/** Acting on another member (kick, ban) needs the action's level and a level strictly above theirs. */
function actOn(pl: RoomPowerLevels, me: string, target: string, needed: number, what: string): Verdict {
  if (me === target) return no(`You can't ${what} yourself`);
  const mine = userLevel(pl, me);
  if (mine < needed) return no(`${capitalise(what)} needs power level ${needed}`);
  if (isCreator(pl, target)) return no("Room creators can't be removed");
  if (userLevel(pl, target) >= mine) return no(`Their power level is not lower than yours`);
  return YES;
}

export function canKick(pl: RoomPowerLevels, me: string, target: string): Verdict {
  return actOn(pl, me, target, kickLevel(pl), "kick");
}

export function canBan(pl: RoomPowerLevels, me: string, target: string): Verdict {
  return actOn(pl, me, target, banLevel(pl), "ban");
}

/** Unbanning is a leave by someone else: it needs both the ban level and the kick level (auth rules, membership "leave"). */
export function canUnban(pl: RoomPowerLevels, me: string, target: string): Verdict {
  const ban = actOn(pl, me, target, banLevel(pl), "unban");
  if (!ban.ok) return ban;
  return actOn(pl, me, target, kickLevel(pl), "unban");
}

export function canRedactOthers(pl: RoomPowerLevels, me: string): Verdict {
  const needed = redactLevel(pl);
  return userLevel(pl, me) >= needed ? YES : no(`Needs power level ${needed}`);
}

/**
 * Setting a member's level to `level` (auth rules for m.room.power_levels): one must be
 * allowed to send the event, may not grant more than one's own level, and may change
 * another member's level only when theirs is below one's own (one's own level may
 * always be lowered).
 */
export function canSetUserLevel(pl: RoomPowerLevels, me: string, target: string, level: number): Verdict {
  const send = canSendState(pl, me, "m.room.power_levels");
  if (!send.ok) return no(`Changing roles needs power level ${eventLevel(pl, "m.room.power_levels", true)}`);
  if (isCreator(pl, target)) return no("Room creators always keep full power");
  const mine = userLevel(pl, me);
  const theirs = userLevel(pl, target);
  if (level === theirs) return no("Already at that level");
  if (level > mine) return no(`You can't give a level above your own (${mine})`);
  if (target !== me && theirs >= mine) return no("Their power level is not lower than yours");
  return YES;
}

/** Mute sets the member just below the level needed to send messages; unmute back to users_default (or that level). */
export function mutedLevel(pl: RoomPowerLevels): number {
  return sendMessageLevel(pl) - 1;
}

export function unmutedLevel(pl: RoomPowerLevels): number {
  return Math.max(num(pl.users_default, 0), sendMessageLevel(pl));
}

export function canMute(pl: RoomPowerLevels, me: string, target: string): Verdict {
  if (me === target) return no("You can't mute yourself");
  if (isMuted(pl, target)) return no("Already muted");
  return canSetUserLevel(pl, me, target, mutedLevel(pl));
}

export function canUnmute(pl: RoomPowerLevels, me: string, target: string): Verdict {
  if (!isMuted(pl, target)) return no("Not muted");
  return canSetUserLevel(pl, me, target, unmutedLevel(pl));
}

/** Keys of the content that a permission select edits: a top-level level, or an event type's level. */
export type PermissionKey =
  | { kind: "level"; key: "ban" | "kick" | "invite" | "redact" | "events_default" | "state_default" | "users_default" }
  | { kind: "event"; eventType: string; isState: boolean };

export function permissionLevel(pl: RoomPowerLevels, key: PermissionKey): number {
  if (key.kind === "event") return eventLevel(pl, key.eventType, key.isState);
  switch (key.key) {
    case "ban": return banLevel(pl);
    case "kick": return kickLevel(pl);
    case "invite": return inviteLevel(pl);
    case "redact": return redactLevel(pl);
    case "events_default": return num(pl.events_default, 0);
    case "state_default": return num(pl.state_default, 50);
    case "users_default": return num(pl.users_default, 0);
  }
}

/** Changing a required level: allowed to send the event, and both the old and the new value at most one's own level. */
export function canSetPermission(pl: RoomPowerLevels, me: string, key: PermissionKey, level: number): Verdict {
  const send = canSendState(pl, me, "m.room.power_levels");
  if (!send.ok) return no(`Changing permissions needs power level ${eventLevel(pl, "m.room.power_levels", true)}`);
  const mine = userLevel(pl, me);
  if (permissionLevel(pl, key) > mine) return no(`Currently above your level (${mine})`);
  if (level > mine) return no(`You can't require more than your own level (${mine})`);
  return YES;
}

/** A copy of the content with one member's level set (deleting the entry when it equals users_default). */
export function withUserLevel(pl: RoomPowerLevels, userId: string, level: number): PowerLevelsContent {
  const { creators: _creators, ...content } = pl;
  const users = { ...(content.users ?? {}) };
  if (level === num(content.users_default, 0)) delete users[userId];
  else users[userId] = level;
  return { ...content, users };
}

export function withPermission(pl: RoomPowerLevels, key: PermissionKey, level: number): PowerLevelsContent {
  const { creators: _creators, ...content } = pl;
  if (key.kind === "event") return { ...content, events: { ...(content.events ?? {}), [key.eventType]: level } };
  return { ...content, [key.key]: level };
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
