/**
 * Whether this browser may show notifications: the browser's permission plus the
 * user's own on/off switch (kept per device), so turning them off needs no trip to
 * the browser's site settings.  Permission is only ever asked from a click.
 */
import { signal } from "@preact/signals";

export type PermissionState = NotificationPermission | "unsupported";

const ENABLED_KEY = "hs.notifications";

export function notificationSupport(): boolean {
  return typeof window !== "undefined" && "Notification" in window;
}

function currentPermission(): PermissionState {
  return notificationSupport() ? Notification.permission : "unsupported";
}

function readSwitch(): boolean {
  try {
    return localStorage.getItem(ENABLED_KEY) !== "off";
  } catch {
    return true;
  }
}

export const notificationPermission = signal<PermissionState>(currentPermission());
/** The user's switch on this device; notifications show only when this and the permission allow. */
export const notificationsSwitchedOn = signal<boolean>(readSwitch());

export function notificationsAllowed(): boolean {
  return notificationsSwitchedOn.value && currentPermission() === "granted";
}

/** From the "Enable notifications" button only: asks the browser if it has not been asked yet. */
export async function enableNotifications(): Promise<PermissionState> {
  setSwitch(true);
  if (notificationSupport() && Notification.permission === "default") await Notification.requestPermission();
  notificationPermission.value = currentPermission();
  return notificationPermission.value;
}

export function disableNotifications(): void {
  setSwitch(false);
}

/** Permission can change in the browser's site settings while the app runs. */
export function refreshPermission(): void {
  notificationPermission.value = currentPermission();
}

function setSwitch(on: boolean): void {
  notificationsSwitchedOn.value = on;
  try {
    localStorage.setItem(ENABLED_KEY, on ? "on" : "off");
  } catch {
    // Storage blocked: the switch holds for this page only.
  }
}
