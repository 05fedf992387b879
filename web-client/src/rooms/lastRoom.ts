/**
 * The room that was open, per account, so the next start reopens it.  The key holds
 * the user ID, so signing out deletes it with the rest of the account's
 * localStorage (session/storage.ts).
 */
const PREFIX = "hs.lastRoom.";

export function lastRoomKey(userId: string): string {
  return PREFIX + userId;
}

export function readLastRoom(userId: string): string | null {
  try {
    return localStorage.getItem(lastRoomKey(userId));
  } catch {
    return null; // storage disabled: nothing to reopen
  }
}

export function writeLastRoom(userId: string, roomId: string | null): void {
  try {
    if (roomId) localStorage.setItem(lastRoomKey(userId), roomId);
    else localStorage.removeItem(lastRoomKey(userId));
  } catch {
    // storage full or disabled: the next start opens no room
  }
}

/**
 * Whether to reopen `stored` now: "open" once the room is joined, "drop" once the
 * rooms are in sync with the server and it is not (left meanwhile), "wait" until one
 * of the two is known.
 */
export function reopenDecision(storedMembership: string | undefined, synced: boolean): "open" | "drop" | "wait" {
  if (storedMembership === "join") return "open";
  return synced ? "drop" : "wait";
}
