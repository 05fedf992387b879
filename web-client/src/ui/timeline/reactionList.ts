/**
 * The reactions shown under a message: the SDK's aggregated annotations plus one's
 * reactions still waiting in the outbox (offline), each counted once — a queued
 * reaction may also have a local echo in the SDK with the same transaction ID.
 * spec: client-server-api/modules/event_annotations.md
 */

export interface ReactionSource {
  sender: string;
  /** Set for a local echo not accepted by the server yet. */
  txnId?: string;
}

export interface QueuedReaction {
  key: string;
  txnId: string;
}

export interface ReactionChip {
  key: string;
  senders: string[];
  mine: boolean;
  /** One's reaction still in the outbox: un-reacting discards it instead of redacting. */
  queuedTxnId?: string;
}

export function reactionChips(
  annotations: readonly (readonly [string, readonly ReactionSource[]])[],
  queued: readonly QueuedReaction[],
  me: string,
): ReactionChip[] {
  const queuedTxnIds = new Set(queued.map((item) => item.txnId));
  const chips = new Map<string, ReactionChip>();
  for (const [key, sources] of annotations) {
    const senders = sources.filter((source) => !(source.txnId && queuedTxnIds.has(source.txnId))).map((source) => source.sender);
    if (senders.length) chips.set(key, { key, senders, mine: senders.includes(me) });
  }
  for (const item of queued) {
    const chip = chips.get(item.key) ?? { key: item.key, senders: [], mine: false };
    if (chip.mine) continue; // already reacted with it: the queued one is a duplicate
    chips.set(item.key, { ...chip, senders: [...chip.senders, me], mine: true, queuedTxnId: item.txnId });
  }
  return [...chips.values()];
}

/** The outbox's m.reaction items for `eventId`. */
export function queuedReactionsFor(
  items: readonly { roomId: string; eventType: string; txnId: string; content: Record<string, unknown> }[],
  roomId: string,
  eventId: string,
): QueuedReaction[] {
  const result: QueuedReaction[] = [];
  for (const item of items) {
    if (item.roomId !== roomId || item.eventType !== "m.reaction") continue;
    const relation = item.content["m.relates_to"] as { rel_type?: string; event_id?: string; key?: unknown } | undefined;
    if (relation?.rel_type === "m.annotation" && relation.event_id === eventId && typeof relation.key === "string") {
      result.push({ key: relation.key, txnId: item.txnId });
    }
  }
  return result;
}
