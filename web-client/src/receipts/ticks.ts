/**
 * The ticks on one's own messages: Sending, Sent, Delivered, Seen.
 *
 * Receipts are "up to and including" markers (docs/live-status.md#message-ticks-sent-delivered-seen,
 * spec: client-server-api/_index.md#receipts): a receipt on a later event covers the
 * earlier ones, and seen implies delivered.  So a room needs only two numbers — the
 * furthest timeline position any other member has received, and the furthest any has
 * read — and each message's tick is a comparison with its own position.
 */
import { ReceiptType, type MatrixEvent, type Room } from "matrix-js-sdk";

export type Tick = "Sending" | "Sent" | "Delivered" | "Seen";

/** The server's unstable receipt type, set by the server itself on delivery (docs/live-status.md). */
export const DELIVERED_RECEIPT = "dev.homeserver.delivered";

/** Positions (indexes into the shown timeline) covered by other members' receipts; -1 when none. */
export interface ReceiptMarks {
  deliveredUpTo: number;
  readUpTo: number;
}

export const NO_MARKS: ReceiptMarks = { deliveredUpTo: -1, readUpTo: -1 };

/** One other member's newest receipts, as event IDs (null when the member has none). */
export interface MemberReceipts {
  delivered: string | null;
  read: string | null;
}

/**
 * Folds the members' receipts into the furthest positions, given the event IDs in
 * timeline order.  A receipt on an event that is not among them (older than what is
 * loaded) covers nothing shown.
 */
export function receiptMarks(eventIds: readonly string[], members: readonly MemberReceipts[]): ReceiptMarks {
  const positionOf = new Map<string, number>();
  eventIds.forEach((id, index) => positionOf.set(id, index));
  const at = (id: string | null) => (id === null ? -1 : (positionOf.get(id) ?? -1));
  let deliveredUpTo = -1;
  let readUpTo = -1;
  for (const member of members) {
    deliveredUpTo = Math.max(deliveredUpTo, at(member.delivered));
    readUpTo = Math.max(readUpTo, at(member.read));
  }
  return { deliveredUpTo, readUpTo };
}

/**
 * The tick of one's own message at `position`, or of one that the server has not
 * accepted yet (`position` null: still in the outbox or a pending local echo).
 */
export function tickAt(position: number | null, marks: ReceiptMarks): Tick {
  if (position === null) return "Sending";
  if (marks.readUpTo >= position) return "Seen";
  if (marks.deliveredUpTo >= position) return "Delivered";
  return "Sent";
}

/**
 * The SDK side: the newest real (not locally synthesised) receipts of every other
 * joined member.  matrix-js-sdk keeps receipts of any type it receives in m.receipt,
 * including the unstable delivered one, so no parsing of our own is needed.  The SDK
 * synthesises an m.read for each sender on their own events; those are ignored, or a
 * reply would count as having read everything before it on the server's behalf.
 */
export function memberReceipts(room: Room, myUserId: string): MemberReceipts[] {
  return room
    .getJoinedMembers()
    .filter((member) => member.userId !== myUserId)
    .map((member) => ({
      delivered: room.getReadReceiptForUserId(member.userId, true, DELIVERED_RECEIPT as ReceiptType)?.eventId ?? null,
      read: room.getReadReceiptForUserId(member.userId, true, ReceiptType.Read)?.eventId ?? null,
    }));
}

/** True while the server has not accepted the event: a local echo still being sent. */
export function isPending(event: MatrixEvent): boolean {
  return event.status !== null || !event.getId()?.startsWith("$");
}
