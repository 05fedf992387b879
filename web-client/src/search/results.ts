/**
 * Putting the two sources of message results together for display: the server's
 * (unencrypted rooms) and the local index's (encrypted rooms), and marking the words
 * that matched.
 */
import MiniSearch from "minisearch";
import type { FoundMessage } from "./message";

export interface MessageResult extends FoundMessage {
  /** Where it was found: the server, or this device's index of encrypted rooms. */
  source: "server" | "local";
}

/** Both lists as one, newest first, each event once. */
export function mergeResults(server: MessageResult[], local: MessageResult[]): MessageResult[] {
  const seen = new Set<string>();
  const merged: MessageResult[] = [];
  for (const result of [...server, ...local]) {
    if (seen.has(result.eventId)) continue;
    seen.add(result.eventId);
    merged.push(result);
  }
  return merged.sort((a, b) => b.ts - a.ts);
}

export interface TextPart {
  text: string;
  match: boolean;
}

/** `text` cut into the runs that are (or are not) one of `terms`, case-insensitively, for <mark>. */
export function highlightParts(text: string, terms: string[]): TextPart[] {
  const words = [...new Set(terms.map((term) => term.trim()).filter(Boolean))].sort((a, b) => b.length - a.length);
  if (words.length === 0) return [{ text, match: false }];
  const escaped = words.map((word) => word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(${escaped.join("|")})`, "giu");
  const parts: TextPart[] = [];
  let last = 0;
  for (const found of text.matchAll(pattern)) {
    const start = found.index ?? 0;
    if (start > last) parts.push({ text: text.slice(last, start), match: false });
    parts.push({ text: found[0], match: true });
    last = start + found[0].length;
  }
  if (last < text.length) parts.push({ text: text.slice(last), match: false });
  return parts;
}

/** Names matching `query` fuzzily (typos, prefixes), best first: for finding joined rooms by name. */
export function fuzzyMatchNames<T extends { id: string; name: string }>(items: T[], query: string, limit = 10): T[] {
  const mini = new MiniSearch<T>({ fields: ["name"], searchOptions: { fuzzy: 0.2, prefix: true, combineWith: "AND" } });
  mini.addAll(items);
  const byId = new Map(items.map((item) => [item.id, item]));
  return mini
    .search(query)
    .slice(0, limit)
    .map((result) => byId.get(result.id as string)!)
    .filter(Boolean);
}
