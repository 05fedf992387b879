/// <reference lib="webworker" />
/**
 * The service worker: the app shell from the precache (so the app opens offline),
 * navigations answered with the cached index.html, and Web Push notifications
 * (docs/push.md) while the app is closed.  API calls are never cached: the app keeps
 * its data in IndexedDB itself, and a cached /sync or media answer would be stale or
 * leak between accounts.
 */
import { createHandlerBoundToURL, precacheAndRoute } from "workbox-precaching";
import { NavigationRoute, registerRoute } from "workbox-routing";
import { pushNotificationText, type PushPayload } from "./notify/pushPayload";

declare const self: ServiceWorkerGlobalScope;

precacheAndRoute(self.__WB_MANIFEST);

// Paths the server answers itself, even for a navigation (SSO redirects, fallback
// auth pages, well-known files, health checks): never the app shell.
registerRoute(
  new NavigationRoute(createHandlerBoundToURL("/index.html"), {
    denylist: [/^\/_matrix(\/|$)/, /^\/_synapse(\/|$)/, /^\/\.well-known(\/|$)/, /^\/health(\/|$)/],
  }),
);

self.addEventListener("message", (event) => {
  if ((event.data as { type?: string } | null)?.type === "SKIP_WAITING") {
    void self.skipWaiting();
    event.waitUntil(self.clients.claim());
  }
});

async function visibleFocusedClient(): Promise<boolean> {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  return windows.some((client) => client.visibilityState === "visible" && client.focused);
}

async function updateBadge(unread: number | undefined): Promise<void> {
  const nav = self.navigator as WorkerNavigator & {
    setAppBadge?: (count?: number) => Promise<void>;
    clearAppBadge?: () => Promise<void>;
  };
  if (unread === undefined) return;
  await (unread > 0 ? nav.setAppBadge?.(unread) : nav.clearAppBadge?.())?.catch(() => undefined);
}

self.addEventListener("push", (event) => {
  let payload: PushPayload = {};
  try {
    payload = (event.data?.json() ?? {}) as PushPayload;
  } catch {
    // Not JSON: still show something, browsers require a notification per push.
  }
  event.waitUntil(
    (async () => {
      await updateBadge(payload.counts?.unread);
      // The open app shows its own notifications (or none, when the user is looking).
      if (await visibleFocusedClient()) return;
      const { title, body } = pushNotificationText(payload);
      await self.registration.showNotification(title, {
        body,
        // The same tag as the page's own notifications: one per room, never two.
        tag: payload.room_id,
        icon: "/icons/icon-192.png",
        badge: "/icons/icon-192.png",
        data: { roomId: payload.room_id },
      });
    })(),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const roomId = (event.notification.data as { roomId?: string } | null)?.roomId;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = windows.find((client) => new URL(client.url).origin === self.location.origin);
      if (open) {
        await open.focus();
        // src/notify/openRoom.ts listens for this.
        if (roomId) open.postMessage({ type: "open-room", roomId });
        return;
      }
      await self.clients.openWindow(roomId ? `/#/room/${encodeURIComponent(roomId)}` : "/");
    })(),
  );
});
