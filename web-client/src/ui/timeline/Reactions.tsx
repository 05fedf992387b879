/**
 * Reactions under a message: one chip per key with its count and who reacted (title),
 * pressed when one reacted oneself; clicking toggles one's own reaction (a new
 * m.annotation, or the redaction of one's existing one).
 * spec: client-server-api/modules/event_annotations.md
 */
import { MatrixEventEvent, RelationsEvent, type MatrixEvent, type Room } from "matrix-js-sdk";
import { signal } from "@preact/signals";
import { useEffect, useReducer } from "preact/hooks";
import { client, timelineRevision } from "../../state/app";
import { discardItem, outboxItems, queueEvent } from "../../offline/outbox";
import { errorMessage } from "../../rooms/errors";
import { reaction } from "./contents";
import { isPending } from "../../receipts/ticks";
import { queuedReactionsFor, reactionChips, type ReactionChip } from "./reactionList";

export function annotationsOf(room: Room, event: MatrixEvent): [string, MatrixEvent[]][] {
  const relations = room.relations.getChildEventsForEvent(event.getId()!, "m.annotation", "m.reaction");
  const sorted = relations?.getSortedAnnotationsByKey() ?? [];
  return sorted
    .map(([key, events]) => [key, [...events].filter((reactionEvent) => !reactionEvent.isRedacted())] as [string, MatrixEvent[]])
    .filter(([, events]) => events.length > 0);
}

/** The chips under `event`: the SDK's reactions and one's own still in the outbox. */
function chipsOf(room: Room, event: MatrixEvent, me: string): ReactionChip[] {
  const annotations = annotationsOf(room, event).map(
    ([key, events]) =>
      [key, events.map((reactionEvent) => ({ sender: reactionEvent.getSender()!, txnId: isPending(reactionEvent) ? reactionEvent.getTxnId() : undefined }))] as const,
  );
  return reactionChips(annotations, queuedReactionsFor(outboxItems.value, room.roomId, event.getId()!), me);
}

/** Why the last reaction change on a message failed, shown under it. */
export const reactionError = signal<{ eventId: string; message: string } | null>(null);

/**
 * Adds one's reaction with `key`, or takes it back when there is one: a reaction still
 * in the outbox is discarded (never queued twice), a sent one is redacted.
 */
export async function toggleReaction(room: Room, event: MatrixEvent, key: string): Promise<void> {
  const matrix = client.value;
  if (!matrix) return;
  const me = matrix.getUserId()!;
  const eventId = event.getId()!;
  if (reactionError.value?.eventId === eventId) reactionError.value = null;
  const chip = chipsOf(room, event, me).find((candidate) => candidate.key === key);
  try {
    if (chip?.queuedTxnId) {
      await discardItem(chip.queuedTxnId);
    } else if (chip?.mine) {
      const existing = annotationsOf(room, event)
        .find(([candidate]) => candidate === key)?.[1]
        .find((reactionEvent) => reactionEvent.getSender() === me);
      if (!existing) return;
      if (isPending(existing)) throw new Error("This reaction is still being sent; try again in a moment.");
      await matrix.redactEvent(room.roomId, existing.getId()!);
    } else {
      await queueEvent(room.roomId, "m.reaction", reaction(eventId, key));
    }
  } catch (caught) {
    reactionError.value = { eventId, message: errorMessage(caught) };
  }
}

/**
 * Re-renders when the message's reactions change.  The SDK aggregates them after the
 * timeline event that brought them (asynchronously), and announces that only on the
 * target event (RelationsCreated) and on the Relations collection (Add/Remove/Redaction).
 */
function useAnnotationUpdates(room: Room, event: MatrixEvent): void {
  const [, rerender] = useReducer((count: number) => count + 1, 0);
  const relations = room.relations.getChildEventsForEvent(event.getId() ?? "", "m.annotation", "m.reaction");
  useEffect(() => {
    const update = () => rerender(undefined);
    event.on(MatrixEventEvent.RelationsCreated, update);
    relations?.on(RelationsEvent.Add, update);
    relations?.on(RelationsEvent.Remove, update);
    relations?.on(RelationsEvent.Redaction, update);
    return () => {
      event.off(MatrixEventEvent.RelationsCreated, update);
      relations?.off(RelationsEvent.Add, update);
      relations?.off(RelationsEvent.Remove, update);
      relations?.off(RelationsEvent.Redaction, update);
    };
  }, [event, relations]);
}

export function Reactions(props: { room: Room; event: MatrixEvent }) {
  timelineRevision.value;
  useAnnotationUpdates(props.room, props.event);
  const me = client.value?.getUserId() ?? "";
  const chips = chipsOf(props.room, props.event, me);
  const failure = reactionError.value;
  const error = failure && failure.eventId === props.event.getId() ? failure.message : null;
  if (chips.length === 0 && !error) return null;
  return (
    <>
      {chips.length > 0 && (
        <ul class="reactions" aria-label="Reactions">
          {chips.map(({ key, senders, mine, queuedTxnId }) => {
            const names = senders.map((sender) => (sender === me ? "You" : (props.room.getMember(sender)?.name ?? sender)));
            const who = `${names.join(", ")} reacted with ${key}${queuedTxnId ? " (not sent yet)" : ""}`;
            return (
              <li key={key}>
                <button
                  type="button"
                  class={[mine && "reaction mine", !mine && "reaction", queuedTxnId && "queued"].filter(Boolean).join(" ")}
                  aria-pressed={mine}
                  aria-label={`${key} ${senders.length}: ${who}`}
                  title={who}
                  onClick={() => void toggleReaction(props.room, props.event, key)}
                >
                  <span aria-hidden="true">{key}</span> <span aria-hidden="true">{senders.length}</span>
                </button>
              </li>
            );
          })}
        </ul>
      )}
      {error && (
        <p class="error-text reaction-error" role="alert">
          Reaction not changed: {error}
        </p>
      )}
    </>
  );
}
