/**
 * Which outbox items have had a failed attempt and wait to be tried again.  The outbox
 * puts an item back to "queued" after a network error or a 5xx (and after a 429),
 * without recording that it failed; seen from outside, that is the move from
 * "sending" back to "queued".  The timeline shows those as "Retrying…" with "Retry now".
 */
import { effect, signal } from "@preact/signals";
import { outboxItems, type OutboxItem } from "../../offline/outbox";

export interface RetryTracker {
  states: Map<string, OutboxItem["state"]>;
  retrying: ReadonlySet<string>;
}

export const emptyTracker = (): RetryTracker => ({ states: new Map(), retrying: new Set() });

/** The tracker after the outbox list changed to `items`. */
export function trackRetries(previous: RetryTracker, items: readonly OutboxItem[]): RetryTracker {
  const states = new Map<string, OutboxItem["state"]>();
  const retrying = new Set<string>();
  for (const item of items) {
    states.set(item.txnId, item.state);
    const before = previous.states.get(item.txnId);
    const failedAttempt = before === "sending" && item.state === "queued";
    // Stays "retrying" through later attempts, until it is sent (gone) or refused ("failed").
    if (item.state !== "failed" && (failedAttempt || previous.retrying.has(item.txnId))) retrying.add(item.txnId);
  }
  return { states, retrying };
}

/** Transaction IDs of the items being retried.  Written by the effect below only. */
export const retryingTxnIds = signal<ReadonlySet<string>>(new Set());

let tracker = emptyTracker();
effect(() => {
  tracker = trackRetries(tracker, outboxItems.value);
  retryingTxnIds.value = tracker.retrying;
});
