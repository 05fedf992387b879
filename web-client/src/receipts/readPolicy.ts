/**
 * When to send a read receipt: only while the user can actually be reading — the room
 * is open, the page visible and the window focused — so "Seen" means seen.  Decided
 * from the standard signals (document.visibilityState, document.hasFocus()) and
 * re-checked on visibilitychange, focus, blur and every new event.
 * spec: client-server-api/_index.md#receipts
 */
import { ReceiptType, RoomEvent, type MatrixClient, type MatrixEvent, type Room } from "matrix-js-sdk";
import { isPending } from "./ticks";

export interface ReadingConditions {
  roomOpen: boolean;
  visibilityState: DocumentVisibilityState;
  hasFocus: boolean;
}

/** The user can be reading the room right now. */
export function canBeReading(conditions: ReadingConditions): boolean {
  return conditions.roomOpen && conditions.visibilityState === "visible" && conditions.hasFocus;
}

export interface TimelineEntry {
  id: string;
  sender: string;
  pending: boolean;
}

/**
 * The event to send a read receipt for, or null: the newest event from someone else
 * that the server has (a receipt for one's own event tells nobody anything, and a
 * pending echo has no ID yet), and only if it is further than what was already marked
 * read (`readIndex`, the position of one's current receipt, -1 if none or not loaded).
 */
export function receiptTarget(entries: readonly TimelineEntry[], myUserId: string, readIndex: number): string | null {
  for (let index = entries.length - 1; index > readIndex; index--) {
    const entry = entries[index]!;
    if (!entry.pending && entry.sender !== myUserId) return entry.id;
  }
  return null;
}

/** Browser signals, injectable for tests. */
export interface PageSignals {
  visibilityState(): DocumentVisibilityState;
  hasFocus(): boolean;
  /** Calls `listener` on visibilitychange, focus and blur; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}

export const browserPage: PageSignals = {
  visibilityState: () => document.visibilityState,
  hasFocus: () => document.hasFocus(),
  onChange(listener) {
    document.addEventListener("visibilitychange", listener);
    window.addEventListener("focus", listener);
    window.addEventListener("blur", listener);
    return () => {
      document.removeEventListener("visibilitychange", listener);
      window.removeEventListener("focus", listener);
      window.removeEventListener("blur", listener);
    };
  },
};

function entriesOf(events: readonly MatrixEvent[]): TimelineEntry[] {
  return events.map((event) => ({ id: event.getId() ?? "", sender: event.getSender() ?? "", pending: isPending(event) }));
}

/**
 * Sends m.read receipts for the open room while the page can be read; call the
 * returned function when the room closes.
 */
export function watchReadReceipts(client: MatrixClient, room: Room, page: PageSignals = browserPage): () => void {
  const myUserId = client.getUserId()!;
  let open = true;
  let lastSent: string | null = null;

  const check = () => {
    if (!canBeReading({ roomOpen: open, visibilityState: page.visibilityState(), hasFocus: page.hasFocus() })) return;
    const events = room.getLiveTimeline().getEvents();
    const entries = entriesOf(events);
    const mine = room.getReadReceiptForUserId(myUserId, true, ReceiptType.Read)?.eventId;
    const readIndex = Math.max(
      mine ? entries.findIndex((entry) => entry.id === mine) : -1,
      lastSent ? entries.findIndex((entry) => entry.id === lastSent) : -1,
    );
    const target = receiptTarget(entries, myUserId, readIndex);
    if (!target) return;
    lastSent = target;
    const event = events.find((candidate) => candidate.getId() === target)!;
    client.sendReadReceipt(event, ReceiptType.Read).catch(() => {
      // Offline or refused: forget it so the next check tries again.
      if (lastSent === target) lastSent = null;
    });
  };

  const onTimeline = (_event: MatrixEvent, eventRoom: Room | undefined) => {
    if (eventRoom?.roomId === room.roomId) queueMicrotask(check);
  };
  const unsubscribe = page.onChange(check);
  client.on(RoomEvent.Timeline, onTimeline);
  client.on(RoomEvent.LocalEchoUpdated, onTimeline);
  check();
  return () => {
    open = false;
    unsubscribe();
    client.off(RoomEvent.Timeline, onTimeline);
    client.off(RoomEvent.LocalEchoUpdated, onTimeline);
  };
}
