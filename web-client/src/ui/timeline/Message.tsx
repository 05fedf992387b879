/**
 * One message in the timeline: sender, quoted reply, body, time, "(edited)", the tick
 * on one's own messages, reactions, and its actions (Reply, React, Edit, Delete) as
 * real buttons, so they are reachable with the keyboard.
 */
import { MatrixEventEvent, type MatrixEvent, type Room } from "matrix-js-sdk";
import { useEffect, useReducer, useState } from "preact/hooks";
import { client, focusEvent, panel, timelineRevision } from "../../state/app";
import type { Tick } from "../../receipts/ticks";
import { isPending } from "../../receipts/ticks";
import { Ticks } from "./Ticks";
import { MessageBody, plainText } from "./MessageBody";
import { Reactions, toggleReaction } from "./Reactions";
import { ConfirmDelete } from "./ConfirmDelete";
import { QUICK_REACTIONS } from "./contents";
import { editing, focusComposer, replyingTo } from "./composerState";
import { presenceLabel } from "./PresenceDot";

export function timeOf(ts: number): string {
  return new Date(ts).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

/** Own text messages can be edited (media are replaced by sending anew). */
export function isEditable(event: MatrixEvent, myUserId: string): boolean {
  return (
    event.getSender() === myUserId &&
    event.getType() === "m.room.message" &&
    !event.isRedacted() &&
    !isPending(event) &&
    ["m.text", "m.emote", "m.notice"].includes(event.getContent().msgtype ?? "")
  );
}

export function Message(props: { room: Room; event: MatrixEvent; tick: Tick | null; showSender: boolean }) {
  // The SDK mutates events in place (redactions, edits, decryption): the props stay the
  // same object, so the revision is what tells this component to render again.
  timelineRevision.value;
  const { room, event } = props;
  const matrix = client.value!;
  const me = matrix.getUserId()!;
  const sender = event.getSender()!;
  const senderName = room.getMember(sender)?.name ?? sender;
  const own = sender === me;
  const [picking, setPicking] = useState(false);
  const [confirming, setConfirming] = useState(false);
  // An edit is applied to the original asynchronously, after the timeline event that
  // announced it, and the SDK re-emits Replaced on the client only for local echoes.
  const [, rerender] = useReducer((count: number) => count + 1, 0);
  useEffect(() => {
    const onReplaced = () => rerender(undefined);
    event.on(MatrixEventEvent.Replaced, onReplaced);
    return () => void event.off(MatrixEventEvent.Replaced, onReplaced);
  }, [event]);
  const pending = isPending(event);
  const deleted = event.isRedacted();
  const canDelete = !pending && !deleted && (own || room.currentState.maySendRedactionForEvent(event, me));
  const edited = !deleted && !!event.replacingEventId();

  return (
    <article
      class={own ? "message own" : "message"}
      aria-label={`${senderName} at ${timeOf(event.getTs())}`}
      data-event-id={event.getId()}
    >
      {props.showSender && !own && (
        <header class="message-sender" title={presenceLabel(sender)}>
          {senderName}
        </header>
      )}
      {event.replyEventId && !deleted && <ReplyQuote room={room} eventId={event.replyEventId} />}
      <MessageBody event={event} senderName={senderName} />
      <footer class="message-meta">
        <time dateTime={new Date(event.getTs()).toISOString()}>{timeOf(event.getTs())}</time>
        {edited && (
          <button
            type="button"
            class="link-button edited"
            title="Show the edit history"
            onClick={() => (panel.value = { kind: "edit-history", roomId: room.roomId, eventId: event.getId()! })}
          >
            (edited)
          </button>
        )}
        {own && props.tick && <Ticks tick={props.tick} />}
      </footer>
      {!deleted && <Reactions room={room} event={event} />}
      {!deleted && !pending && (
        <div class="message-actions" role="group" aria-label="Message actions">
          <button type="button" onClick={() => ((replyingTo.value = event), (editing.value = null), focusComposer.value++)}>
            Reply
          </button>
          <button type="button" aria-expanded={picking} onClick={() => setPicking(!picking)}>
            React
          </button>
          {isEditable(event, me) && (
            <button type="button" onClick={() => ((editing.value = event), (replyingTo.value = null), focusComposer.value++)}>
              Edit
            </button>
          )}
          {canDelete && (
            <button type="button" class="danger" onClick={() => setConfirming(true)}>
              Delete
            </button>
          )}
          {picking && (
            <div class="reaction-picker" role="group" aria-label="Quick reactions">
              {QUICK_REACTIONS.map((key) => (
                <button
                  type="button"
                  key={key}
                  aria-label={`React with ${key}`}
                  onClick={() => (void toggleReaction(room, event, key), setPicking(false))}
                >
                  {key}
                </button>
              ))}
            </div>
          )}
        </div>
      )}
      {confirming && <ConfirmDelete event={event} onClose={() => setConfirming(false)} />}
    </article>
  );
}

/** The message replied to; choosing it scrolls the timeline there (loading history if needed). */
function ReplyQuote(props: { room: Room; eventId: string }) {
  const { room, eventId } = props;
  const quoted = room.findEventById(eventId);
  const jump = () => (focusEvent.value = { roomId: room.roomId, eventId });
  if (!quoted) {
    return (
      <button type="button" class="reply-quote muted" onClick={jump}>
        In reply to an earlier message
      </button>
    );
  }
  const name = room.getMember(quoted.getSender()!)?.name ?? quoted.getSender();
  return (
    <button type="button" class="reply-quote" onClick={jump} title="Show the message replied to">
      <span class="visually-hidden">In reply to </span>
      <span class="reply-sender">{name}</span> {plainText(quoted)}
    </button>
  );
}
