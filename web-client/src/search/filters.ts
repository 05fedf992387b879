/**
 * The filters of message search, shared by the server search (POST /search) and the
 * local index of encrypted rooms, so one form drives both.
 */

/** `dev.homeserver.media` values (docs/search.md#filters) and the msgtype each stands for. */
export const MEDIA_KINDS = { image: "m.image", audio: "m.audio", video: "m.video", file: "m.file" } as const;
export type MediaKind = keyof typeof MEDIA_KINDS;

export interface SearchFilters {
  /** Only these rooms (all the user's rooms when absent). */
  roomIds?: string[];
  /** Only messages from this user ID. */
  sender?: string;
  /** origin_server_ts bounds in ms, inclusive. */
  sinceTs?: number;
  untilTs?: number;
  /** Only these kinds of media messages. */
  media?: MediaKind[];
  /** Only others' messages after the user's read receipt. */
  unreadOnly?: boolean;
}

/** The msgtypes a media filter keeps, or null when it keeps every message. */
export function msgtypesOf(media: MediaKind[] | undefined): Set<string> | null {
  if (!media || media.length === 0) return null;
  return new Set(media.map((kind) => MEDIA_KINDS[kind]));
}

/** The start of a local calendar day ("2026-12-03" from an <input type="date">), or undefined. */
export function dayStart(value: string): number | undefined {
  if (!value) return undefined;
  const time = new Date(`${value}T00:00:00`).getTime();
  return Number.isNaN(time) ? undefined : time;
}

/** The last millisecond of a local calendar day, or undefined. */
export function dayEnd(value: string): number | undefined {
  const start = dayStart(value);
  return start === undefined ? undefined : start + 24 * 60 * 60 * 1000 - 1;
}
