/**
 * The app's shared, observable state.  Every screen reads these signals; the module
 * that owns a piece of state is the only one that writes it (named on each).
 */
import { signal } from "@preact/signals";
import type { MatrixClient } from "matrix-js-sdk";

/** The signed-in client, or null on the login screen.  Written by session/. */
export const client = signal<MatrixClient | null>(null);

/** The open room.  Written by the room list, invites, search results, notifications. */
export const selectedRoomId = signal<string | null>(null);

/** True while the browser believes it is online and the server answers.  Written by offline/connectivity.ts. */
export const online = signal<boolean>(typeof navigator === "undefined" ? true : navigator.onLine);

/** matrix-js-sdk's SyncState ("PREPARED", "SYNCING", "ERROR", ...), or "STOPPED".  Written by matrix/client.ts. */
export const syncState = signal<string>("STOPPED");

/** Which modal panel is open, if any.  Written by whoever opens or closes one. */
export type Panel =
  | { kind: "settings" }
  | { kind: "room-settings"; roomId: string }
  | { kind: "create-room" }
  | { kind: "directory" }
  | { kind: "start-dm" }
  | { kind: "search" }
  | { kind: "edit-history"; roomId: string; eventId: string }
  | { kind: "verification"; requestId?: string };
export const panel = signal<Panel | null>(null);

/**
 * Bumped whenever room or timeline data changes inside matrix-js-sdk, so components
 * that read the SDK's mutable objects re-render.  Written by matrix/events.ts.
 */
export const roomsRevision = signal(0);
export const timelineRevision = signal(0);

/**
 * A message to scroll to and highlight in the open room (a reply's quote, a search
 * result); the timeline loads older history until it finds it, then clears this.
 * Written by whoever asks for the jump; set `selectedRoomId` to its room too.
 */
export const focusEvent = signal<{ roomId: string; eventId: string } | null>(null);
