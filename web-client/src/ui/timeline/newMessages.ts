/**
 * Where the "New messages" divider goes when a room opens: before the first message
 * from someone else after the user's read receipt (spec: client-server-api/_index.md#receipts).
 * Decided once when the room opens, so it stays put while the receipt moves on.
 */

export interface MarkerCandidate {
  id: string | undefined;
  sender: string | undefined;
  /** Shown as a message (not state, an edit or a reaction). */
  isMessage: boolean;
}

/**
 * The event the divider goes before, or null when nothing is unread.  When the
 * receipt is not in the loaded history (e.g. none yet, or older than the sync's
 * window), the server's unread count says how many of the latest messages from others
 * are new.
 */
export function firstUnreadMessage(events: readonly MarkerCandidate[], readUpTo: string | null, me: string, unreadCount = 0): string | null {
  const index = readUpTo ? events.findIndex((event) => event.id === readUpTo) : -1;
  const fromOthers = (event: MarkerCandidate) => event.isMessage && event.sender !== me && !!event.id;
  if (index >= 0) return events.slice(index + 1).find(fromOthers)?.id ?? null;
  if (unreadCount <= 0) return null;
  const unread = events.filter(fromOthers).slice(-unreadCount);
  return unread[0]?.id ?? null;
}
