/**
 * The total unread count, shown in the tab title ("(3) Chat") and on the installed
 * app's icon (Badging API) — the same number the server's push sends as
 * `counts.unread` counts notifications in rooms the push rules say notify.
 */
import { KnownMembership, NotificationCountType, type MatrixClient } from "matrix-js-sdk";

const COUNT_PREFIX = /^\(\d+\+?\)\s+/;

export function totalUnread(matrix: MatrixClient): number {
  let total = 0;
  for (const room of matrix.getRooms()) {
    const membership = room.getMyMembership();
    if (membership === KnownMembership.Invite) total += 1;
    else if (membership === KnownMembership.Join) total += room.getUnreadNotificationCount(NotificationCountType.Total);
  }
  return total;
}

/** "Chat" with count 3 → "(3) Chat"; any earlier count is replaced, 0 removes it. */
export function titleWithCount(title: string, count: number): string {
  const base = title.replace(COUNT_PREFIX, "");
  return count > 0 ? `(${count}) ${base}` : base;
}

type BadgingNavigator = Navigator & {
  setAppBadge?: (count?: number) => Promise<void>;
  clearAppBadge?: () => Promise<void>;
};

export function showUnreadCount(count: number): void {
  document.title = titleWithCount(document.title, count);
  const nav = navigator as BadgingNavigator;
  // Only installed apps show a badge; elsewhere the promise rejects, which is fine.
  const done = count > 0 ? nav.setAppBadge?.(count) : nav.clearAppBadge?.();
  done?.catch(() => undefined);
}
