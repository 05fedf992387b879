/**
 * Registers the service worker (src/sw.ts, built to /sw.js) that keeps the app
 * shell available offline.  A new version waits until the user accepts the
 * "Reload to update" offer, or until every tab of the old one is closed.
 */
import { signal } from "@preact/signals";
import type { Workbox } from "workbox-window";

/** True while a new service worker waits to take over.  Written by this module. */
export const updateWaiting = signal(false);

let workbox: Workbox | null = null;
let registration: Promise<ServiceWorkerRegistration | null> = Promise.resolve(null);

export function registerServiceWorker(): void {
  if (!import.meta.env.PROD || typeof navigator === "undefined" || !("serviceWorker" in navigator)) return;
  registration = import("workbox-window")
    .then(async ({ Workbox }) => {
      workbox = new Workbox("/sw.js", { scope: "/" });
      workbox.addEventListener("waiting", () => (updateWaiting.value = true));
      return (await workbox.register()) ?? null;
    })
    .catch((error) => {
      console.warn("service worker registration failed", error);
      return null;
    });
}

/** The registration, for Web Push subscriptions; null in development or when it failed. */
export function getServiceWorkerRegistration(): Promise<ServiceWorkerRegistration | null> {
  return registration;
}

/** Lets the waiting worker take over, then reloads into the new version. */
export function activateUpdate(): void {
  if (!workbox) return;
  workbox.addEventListener("controlling", () => window.location.reload());
  workbox.messageSkipWaiting();
}
