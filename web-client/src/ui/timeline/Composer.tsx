/**
 * The message composer: Enter sends, Shift+Enter starts a new line, Escape cancels a
 * reply or an edit, the Up arrow in an empty composer edits one's last message.
 * Everything is sent through the outbox, so it also works offline.
 */
import type { MatrixEvent, Room } from "matrix-js-sdk";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { client } from "../../state/app";
import { noteUserActivity } from "../../matrix/client";
import { queueEvent } from "../../offline/outbox";
import { AttachButton } from "../media/AttachButton";
import { draftFor, editing, focusComposer, keepDraft, replyingTo } from "./composerState";
import { isMuted } from "../../rooms/powerLevels";
import { currentLevels } from "../rooms/settings/roomPower";
import { replacement, textMessage } from "./contents";
import { plainText } from "./MessageBody";
import { isEditable } from "./Message";
import { TYPING_TIMEOUT_MS, TypingNotifier } from "./typing";

function lastEditable(room: Room, myUserId: string): MatrixEvent | null {
  const events = room.getLiveTimeline().getEvents();
  for (let index = events.length - 1; index >= 0; index--) {
    const event = events[index]!;
    if (event.getType() === "m.room.message" && !event.isRelation("m.replace") && isEditable(event, myUserId)) return event;
  }
  return null;
}

export function Composer(props: { room: Room }) {
  const { room } = props;
  const roomId = room.roomId;
  const textarea = useRef<HTMLTextAreaElement>(null);
  const me = client.value!.getUserId()!;
  const [text, setText] = useState(() => draftFor(me, roomId));
  // The draft is what the user writes anew; an edit's text belongs to the message.
  useEffect(() => {
    if (!editing.value) keepDraft(me, roomId, text);
  }, [text]);
  // spec: client-server-api/_index.md#mroompower_levels (creators of v12 rooms: rooms/v12.md)
  const mayPost = !isMuted(currentLevels(room), me);
  const [error, setError] = useState<string | null>(null);
  const typing = useMemo(
    () => new TypingNotifier((isTyping) => void client.value?.sendTyping(roomId, isTyping, TYPING_TIMEOUT_MS).catch(() => undefined)),
    [roomId],
  );
  useEffect(() => () => typing.stop(), [typing]);

  // Reply or Edit was chosen on a message: take the focus, and for an edit its text.
  const editedEvent = editing.value;
  useEffect(() => {
    if (editedEvent) setText(plainText(editedEvent));
  }, [editedEvent]);
  useEffect(() => {
    if (focusComposer.value) textarea.current?.focus();
  }, [focusComposer.value]);

  const cancel = () => {
    if (editing.value) setText(draftFor(me, roomId));
    editing.value = null;
    replyingTo.value = null;
  };

  const send = () => {
    const body = text.trim();
    if (!body || !mayPost) return;
    const edited = editing.value;
    const content = edited ? replacement(edited.getId()!, body) : textMessage(body, replyingTo.value?.getId() ?? undefined);
    // After saving an edit, the draft written before it comes back.
    setText(edited ? draftFor(me, roomId) : "");
    typing.stop();
    editing.value = null;
    replyingTo.value = null;
    setError(null);
    queueEvent(roomId, "m.room.message", content).catch((failure: unknown) =>
      setError(failure instanceof Error ? failure.message : String(failure)),
    );
  };

  const onKeyDown = (event: KeyboardEvent) => {
    noteUserActivity();
    if (event.isComposing) return; // an input method is composing a character: Enter is for it
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      send();
    } else if (event.key === "Escape" && (editing.value || replyingTo.value)) {
      event.preventDefault();
      cancel();
    } else if (event.key === "ArrowUp" && text === "" && !editing.value) {
      const last = lastEditable(room, client.value!.getUserId()!);
      if (last) {
        event.preventDefault();
        setText(plainText(last));
        editing.value = last;
        replyingTo.value = null;
      }
    }
  };

  const replyTo = replyingTo.value;
  return (
    <form
      class="composer"
      onSubmit={(event) => {
        event.preventDefault();
        send();
      }}
    >
      {(replyTo || editedEvent) && (
        <div class="composer-context">
          <span>
            {editedEvent ? "Editing your message" : `Replying to ${room.getMember(replyTo!.getSender()!)?.name ?? replyTo!.getSender()}: `}
            {replyTo && <q>{plainText(replyTo)}</q>}
          </span>
          <button type="button" class="icon-button" aria-label={editedEvent ? "Cancel editing" : "Cancel reply"} onClick={cancel}>
            ×
          </button>
        </div>
      )}
      {error && (
        <p class="error-text" role="alert">
          Could not send: {error}
        </p>
      )}
      {!mayPost && (
        <p class="composer-denied" id={`composer-denied-${roomId}`}>
          You don't have permission to post in this room
        </p>
      )}
      <fieldset class="composer-row" disabled={!mayPost}>
        <AttachButton roomId={roomId} />
        <textarea
          ref={textarea}
          aria-label="Message"
          aria-describedby={mayPost ? undefined : `composer-denied-${roomId}`}
          placeholder="Write a message…"
          rows={1}
          value={text}
          onInput={(event) => {
            const value = (event.target as HTMLTextAreaElement).value;
            setText(value);
            typing.input(value);
          }}
          onKeyDown={onKeyDown}
        />
        <button type="submit" class="primary" disabled={!text.trim()}>
          {editedEvent ? "Save" : "Send"}
        </button>
      </fieldset>
    </form>
  );
}
