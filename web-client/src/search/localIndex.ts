/**
 * A fuzzy full-text index of decrypted messages of encrypted rooms, which the server
 * cannot search (docs/search.md: "Encrypted rooms are not searched at all").  It lives
 * in memory (minisearch) and each message is also written to its own IndexedDB
 * database, "hs-search", so the index is rebuilt after a reload without decrypting
 * history again.
 */
import MiniSearch, { type SearchResult } from "minisearch";
import { deleteDB, openDB, type DBSchema, type IDBPDatabase } from "idb";
import { msgtypesOf, type SearchFilters } from "./filters";
import { scopedDbName } from "../session/dbNames";
import type { FoundMessage } from "./message";

export const SEARCH_DB_NAME = "hs-search";

/** What each index entry holds (search/message.ts). */
export type IndexedMessage = FoundMessage;

export interface LocalHit extends IndexedMessage {
  score: number;
  /** The words of the messages that matched (typos and prefixes resolved), to highlight. */
  terms: string[];
}

interface SearchDb extends DBSchema {
  messages: { key: string; value: IndexedMessage };
  meta: { key: string; value: string };
}

/** Unread filter support: whether a message is after the user's read receipt in its room. */
export type UnreadTest = (message: IndexedMessage) => boolean;

export class LocalSearchIndex {
  private readonly mini = newMiniSearch();
  private db: IDBPDatabase<SearchDb> | null = null;

  private constructor() {}

  /**
   * Opens the persisted index of `userId`.  An index left by another user (a sign-out
   * that could not clear it) is dropped rather than shown.
   */
  static async open(userId: string): Promise<LocalSearchIndex> {
    const index = new LocalSearchIndex();
    // One database per session (session/dbNames.ts), so accounts never share one.
    const db = await openDB<SearchDb>(scopedDbName(SEARCH_DB_NAME), 1, {
      upgrade(database) {
        database.createObjectStore("messages", { keyPath: "eventId" });
        database.createObjectStore("meta");
      },
    });
    index.db = db;
    const owner = await db.get("meta", "userId");
    if (owner !== userId) {
      const tx = db.transaction(["messages", "meta"], "readwrite");
      await tx.objectStore("messages").clear();
      await tx.objectStore("meta").put(userId, "userId");
      await tx.done;
    } else {
      index.mini.addAll(await db.getAll("messages"));
    }
    return index;
  }

  /** An index kept only in memory (when IndexedDB is unavailable). */
  static inMemory(): LocalSearchIndex {
    return new LocalSearchIndex();
  }

  get size(): number {
    return this.mini.documentCount;
  }

  has(eventId: string): boolean {
    return this.mini.has(eventId);
  }

  /** Adds the messages, or replaces their text (an edit) when already indexed. */
  async put(messages: IndexedMessage[]): Promise<void> {
    const fresh = messages.filter((message) => message.body.trim() !== "");
    for (const message of fresh) {
      if (this.mini.has(message.eventId)) this.mini.replace(message);
      else this.mini.add(message);
    }
    if (!this.db || fresh.length === 0) return;
    const tx = this.db.transaction("messages", "readwrite");
    await Promise.all([...fresh.map((message) => tx.store.put(message)), tx.done]);
  }

  /** Forgets messages (redacted ones). */
  async remove(eventIds: string[]): Promise<void> {
    const present = eventIds.filter((id) => this.mini.has(id));
    for (const id of present) this.mini.discard(id);
    if (!this.db || present.length === 0) return;
    const tx = this.db.transaction("messages", "readwrite");
    await Promise.all([...present.map((id) => tx.store.delete(id)), tx.done]);
  }

  get(eventId: string): IndexedMessage | undefined {
    const stored = this.mini.getStoredFields(eventId);
    return stored ? (stored as unknown as IndexedMessage) : undefined;
  }

  /** Fuzzy search (typos up to 20 % of a word, prefixes), best first, with the filters applied. */
  search(query: string, filters: SearchFilters = {}, isUnread?: UnreadTest, limit = 50): LocalHit[] {
    const rooms = filters.roomIds ? new Set(filters.roomIds) : null;
    const msgtypes = msgtypesOf(filters.media);
    const keep = (message: IndexedMessage) =>
      (!rooms || rooms.has(message.roomId)) &&
      (!filters.sender || message.sender === filters.sender) &&
      (filters.sinceTs === undefined || message.ts >= filters.sinceTs) &&
      (filters.untilTs === undefined || message.ts <= filters.untilTs) &&
      (!msgtypes || msgtypes.has(message.msgtype)) &&
      (!filters.unreadOnly || !isUnread || isUnread(message));
    const results = this.mini.search(query, {
      filter: (result) => keep(result as unknown as IndexedMessage),
    });
    return results.slice(0, limit).map(toHit);
  }

  /** Empties the index and its stored copy. */
  async clear(): Promise<void> {
    this.mini.removeAll();
    if (this.db) await this.db.clear("messages");
  }

  close(): void {
    this.db?.close();
    this.db = null;
  }
}

/** Deletes the persisted index (sign out), whether or not it is open. */
export async function deleteSearchDatabase(): Promise<void> {
  await deleteDB(scopedDbName(SEARCH_DB_NAME));
}

function newMiniSearch(): MiniSearch<IndexedMessage> {
  return new MiniSearch<IndexedMessage>({
    idField: "eventId",
    fields: ["body"],
    storeFields: ["eventId", "roomId", "sender", "ts", "msgtype", "body"],
    searchOptions: { fuzzy: 0.2, prefix: true, combineWith: "AND" },
  });
}

function toHit(result: SearchResult): LocalHit {
  return {
    eventId: result.eventId as string,
    roomId: result.roomId as string,
    sender: result.sender as string,
    ts: result.ts as number,
    msgtype: result.msgtype as string,
    body: result.body as string,
    score: result.score,
    terms: result.terms,
  };
}
