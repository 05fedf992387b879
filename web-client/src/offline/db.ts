/**
 * The app's own IndexedDB database (the SDK keeps its sync and crypto stores in
 * databases of its own).  Holds the outbox: messages written here before they are
 * sent, so they survive a reload and go out when the connection returns.
 */
import { openDB, deleteDB, type DBSchema, type IDBPDatabase } from "idb";
import { scopedDbName } from "../session/dbNames";

export const APP_DB_NAME = "hs-client";

export type OutboxState = "queued" | "sending" | "failed";

export interface OutboxRecord {
  /** The transaction ID of PUT /rooms/{roomId}/send/{eventType}/{txnId}: retries reuse it. */
  txnId: string;
  roomId: string;
  eventType: string;
  content: Record<string, unknown>;
  createdTs: number;
  /** Order of queueing, across reloads (createdTs can tie). */
  seq: number;
  state: OutboxState;
  /** Why the server refused it (state "failed"). */
  error?: string;
  /**
   * Whether the room was encrypted when this was queued (undefined: the room was not
   * known yet).  Such an item is only ever sent encrypted, never in the clear.
   */
  encrypted?: boolean;
}

interface AppSchema extends DBSchema {
  outbox: { key: string; value: OutboxRecord; indexes: { seq: number } };
}

let opening: Promise<IDBPDatabase<AppSchema>> | null = null;
let openName = "";

/** The signed-in session's database (each session has its own, see session/dbNames.ts). */
export function appDb(): Promise<IDBPDatabase<AppSchema>> {
  const name = scopedDbName(APP_DB_NAME);
  if (opening && openName !== name) void closeAppDb();
  openName = name;
  opening ??= openDB<AppSchema>(name, 1, {
    upgrade(db) {
      const outbox = db.createObjectStore("outbox", { keyPath: "txnId" });
      outbox.createIndex("seq", "seq");
    },
    blocking() {
      // Another tab upgrades or deletes the database (sign-out): let it.
      void closeAppDb();
    },
  });
  return opening;
}

export async function closeAppDb(): Promise<void> {
  const db = opening;
  opening = null;
  if (db) (await db.catch(() => null))?.close();
}

/** Sign-out: the database goes with the session. */
export async function deleteAppDb(): Promise<void> {
  await closeAppDb();
  await deleteDB(scopedDbName(APP_DB_NAME));
}
