/**
 * The names of the IndexedDB databases that hold an account's data (sync store,
 * crypto store, outbox, search index), one set per user and device: a second account
 * signed in on this browser, or a new session of the same account, never opens the
 * data of another.  matrix/client.ts sets the scope before anything opens a database.
 */
let scope: string | null = null;

export function setDatabaseScope(userId: string, deviceId: string): void {
  scope = `${userId}/${deviceId}`;
}

/**
 * `base` qualified by the signed-in session, e.g. "hs-client:@alice:example.org/ABCDEF".
 * Before any session (unit tests of a single store) it is `base` itself.
 */
export function scopedDbName(base: string): string {
  return scope === null ? base : `${base}:${scope}`;
}
