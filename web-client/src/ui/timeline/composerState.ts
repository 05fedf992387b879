/**
 * What the composer is doing besides writing a new message: replying to or editing an
 * event.  Set by a message's actions, read by the composer; reset when a room opens.
 */
import { signal } from "@preact/signals";
import type { MatrixEvent } from "matrix-js-sdk";

export const replyingTo = signal<MatrixEvent | null>(null);
export const editing = signal<MatrixEvent | null>(null);
/** Bumped to ask the composer to take the focus (after Reply or Edit was chosen). */
export const focusComposer = signal(0);

export function resetComposerState(): void {
  replyingTo.value = null;
  editing.value = null;
}

/**
 * Unsent text per room, kept while the page lives so switching rooms does not lose it.
 * Keyed by account too: another account signed in on this page has other drafts.
 */
const drafts = new Map<string, string>();
const draftKey = (userId: string, roomId: string) => `${userId}\n${roomId}`;

export function draftFor(userId: string, roomId: string): string {
  return drafts.get(draftKey(userId, roomId)) ?? "";
}

export function keepDraft(userId: string, roomId: string, text: string): void {
  if (text.trim()) drafts.set(draftKey(userId, roomId), text);
  else drafts.delete(draftKey(userId, roomId));
}
