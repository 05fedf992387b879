/**
 * Notifications while signed in: browser notifications for new messages while the
 * tab is hidden, the unread count in the title and app badge, room links from the
 * service worker's notifications, and keeping this device's Web Push pusher fresh.
 */
import { effect } from "@preact/signals";
import type { MatrixClient } from "matrix-js-sdk";
import { roomsRevision } from "../state/app";
import { features } from "../state/features";
import { watchForNotifications } from "./desktop";
import { followRoomLinks } from "./openRoom";
import { refreshPermission } from "./permission";
import { showUnreadCount, totalUnread } from "./unread";
import { checkWebPush } from "./webPush";

export { isRoomMuted, setRoomMuted } from "./mute";

export function startNotifications(matrix: MatrixClient): () => void {
  const stops = [
    watchForNotifications(matrix),
    followRoomLinks(),
    effect(() => {
      void roomsRevision.value; // re-count whenever the rooms change
      showUnreadCount(totalUnread(matrix));
    }),
  ];
  const onVisible = () => refreshPermission();
  document.addEventListener("visibilitychange", onVisible);
  if (features.value.webPushVapidKey) checkWebPush(matrix).catch((error) => console.warn("notify: cannot check Web Push", error));
  return () => {
    for (const stop of stops) stop();
    document.removeEventListener("visibilitychange", onVisible);
    showUnreadCount(0);
  };
}
