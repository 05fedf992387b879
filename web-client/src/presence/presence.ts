/**
 * Presence as people read it: a dot (online / unavailable / offline) and a short label
 * ("Online", "last seen 5 minutes ago").  spec: client-server-api/modules/presence.md;
 * what moves it on our server: docs/live-status.md#presence-and-last-seen.
 *
 * The labels avoid the word "Offline": that word is the app's own connection banner.
 */
import type { User } from "matrix-js-sdk";

export type PresenceState = "online" | "unavailable" | "offline";

export interface PresenceInfo {
  presence?: string;
  currentlyActive?: boolean;
  /** Absolute time of the last activity, in ms since the epoch; 0 or undefined when unknown. */
  lastActiveTs?: number;
}

export interface PresenceView {
  state: PresenceState;
  label: string;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "last seen just now", "last seen 5 minutes ago", "last seen 3 hours ago", "last seen 2 days ago". */
export function lastSeenText(agoMs: number): string {
  const ago = Math.max(0, agoMs);
  if (ago < MINUTE) return "last seen just now";
  const [count, unit] =
    ago < HOUR ? [Math.floor(ago / MINUTE), "minute"] : ago < DAY ? [Math.floor(ago / HOUR), "hour"] : [Math.floor(ago / DAY), "day"];
  return `last seen ${count} ${unit}${count === 1 ? "" : "s"} ago`;
}

export function describePresence(info: PresenceInfo, now: number): PresenceView {
  const state: PresenceState =
    info.presence === "online" || info.presence === "unavailable" ? info.presence : "offline";
  if (state === "online") return { state, label: "Online" };
  const seen = info.lastActiveTs ? lastSeenText(now - info.lastActiveTs) : null;
  if (state === "unavailable") return { state, label: seen ? `Away, ${seen}` : "Away" };
  return { state, label: seen ?? "Not online" };
}

/** The SDK's User as PresenceInfo (lastActiveAgo is relative to when the event arrived). */
export function presenceOfUser(user: User | null | undefined): PresenceInfo {
  if (!user) return {};
  return {
    presence: user.presence,
    currentlyActive: user.currentlyActive,
    lastActiveTs: user.lastPresenceTs ? user.getLastActiveTs() : undefined,
  };
}
