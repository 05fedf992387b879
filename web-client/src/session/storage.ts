/** The signed-in session, kept in localStorage so a reload (even offline) resumes it. */
import type { StoredSession } from "../matrix/client";

export const SESSION_KEY = "hs.session";

export function readSession(): StoredSession | null {
  try {
    const parsed = JSON.parse(localStorage.getItem(SESSION_KEY) ?? "null") as Partial<StoredSession> | null;
    if (parsed && [parsed.baseUrl, parsed.userId, parsed.deviceId, parsed.accessToken].every((v) => typeof v === "string" && v)) {
      return parsed as StoredSession;
    }
  } catch {
    // unreadable: treated as signed out
  }
  return null;
}

export function writeSession(session: StoredSession): void {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

/**
 * Forgets the session and what the SDK and this app keep in localStorage about it
 * (the theme stays: it is this device's choice and paints the login screen).
 */
export function clearSessionStorage(userId: string | null): void {
  const doomed: string[] = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i)!;
    if (key === SESSION_KEY || key === "hs.features" || key.startsWith("mxjssdk_") || key.startsWith("mx_") || (userId && key.includes(userId))) {
      doomed.push(key);
    }
  }
  for (const key of doomed) localStorage.removeItem(key);
}
