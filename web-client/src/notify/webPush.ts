/**
 * Web Push on this device (MSC4174 `webpush` pushers, docs/push.md): the browser's
 * push subscription for the server's VAPID key, registered as a pusher so the server
 * wakes the service worker (src/sw.ts) while the app is closed.
 */
import { signal } from "@preact/signals";
import type { MatrixClient } from "matrix-js-sdk";
import { getServiceWorkerRegistration } from "../offline/serviceWorker";

/** Ours: the server accepts any app_id up to 64 characters; this one names the web client. */
export const WEB_PUSH_APP_ID = "dev.homeserver.web";
export const WEB_PUSH_KIND = "webpush";

/** Whether this device has a push subscription registered as a pusher; null until checked. */
export const webPushActive = signal<boolean | null>(null);

export function webPushSupported(): boolean {
  return typeof navigator !== "undefined" && "serviceWorker" in navigator && typeof PushManager !== "undefined";
}

/** The VAPID key as /capabilities gives it (URL-safe base64) → the bytes PushManager wants. */
export function decodeBase64Url(value: string): Uint8Array<ArrayBuffer> {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(value.length / 4) * 4, "=");
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function sameKey(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.byteLength) return false;
  const view = new Uint8Array(a);
  return view.every((byte, i) => byte === b[i]);
}

/** The pusher for a subscription, as docs/push.md asks: pushkey = p256dh, data.url = endpoint, data.auth. */
export function pusherFor(subscription: PushSubscriptionJSON, deviceName: string, lang: string) {
  const p256dh = subscription.keys?.p256dh;
  const auth = subscription.keys?.auth;
  if (!subscription.endpoint || !p256dh || !auth) throw new Error("The browser gave an incomplete push subscription");
  return {
    kind: WEB_PUSH_KIND,
    app_id: WEB_PUSH_APP_ID,
    pushkey: p256dh,
    app_display_name: "Chat",
    device_display_name: deviceName,
    lang,
    data: { url: subscription.endpoint, auth },
    // Other accounts signed in on this browser keep their pushers.
    append: true,
  };
}

async function registration(): Promise<ServiceWorkerRegistration> {
  const found = await getServiceWorkerRegistration();
  if (!found) throw new Error("The app's service worker is not running (a development build has none)");
  return found;
}

async function deviceName(matrix: MatrixClient): Promise<string> {
  try {
    const device = await matrix.getDevice(matrix.getDeviceId() ?? "");
    if (device.display_name) return device.display_name;
  } catch {
    // Falls back to a generic name below.
  }
  return "Web browser";
}

export async function enableWebPush(matrix: MatrixClient, vapidKey: string): Promise<void> {
  const pushManager = (await registration()).pushManager;
  const key = decodeBase64Url(vapidKey);
  let subscription = await pushManager.getSubscription();
  // A subscription made for another key (the server's key changed) cannot be reused.
  if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  await matrix.setPusher(pusherFor(subscription.toJSON(), await deviceName(matrix), navigator.language || "en"));
  webPushActive.value = true;
}

/** Removes this device's pusher (`kind: null` deletes it) and the browser's subscription. */
export async function disableWebPush(matrix: MatrixClient): Promise<void> {
  const subscription = webPushSupported() ? await (await getServiceWorkerRegistration())?.pushManager.getSubscription() : null;
  const pushkey = subscription?.toJSON().keys?.p256dh;
  if (pushkey) {
    // The SDK's IPusherRequest types `kind` as a string; the spec deletes with null.
    await matrix.setPusher({ kind: null, app_id: WEB_PUSH_APP_ID, pushkey } as unknown as Parameters<MatrixClient["setPusher"]>[0]);
  }
  await subscription?.unsubscribe();
  webPushActive.value = false;
}

/** Is this device's subscription among the account's pushers? */
export async function checkWebPush(matrix: MatrixClient): Promise<boolean> {
  if (!webPushSupported()) return (webPushActive.value = false);
  const subscription = await (await getServiceWorkerRegistration())?.pushManager.getSubscription();
  const pushkey = subscription?.toJSON().keys?.p256dh;
  if (!pushkey) return (webPushActive.value = false);
  const { pushers } = await matrix.getPushers();
  return (webPushActive.value = pushers.some((p) => p.app_id === WEB_PUSH_APP_ID && p.pushkey === pushkey));
}
