/**
 * What a message says: its HTML (sanitized, see FormattedBody) or its plain text with
 * the links made clickable, media through the media helper, or why it cannot be shown.
 */
import type { MatrixEvent } from "matrix-js-sdk";
import { MediaBody } from "../media/MediaBody";
import { UndecryptableNotice } from "../crypto/UndecryptableNotice";
import { linkifyParts } from "../../format/linkify";
import { FormattedBody } from "./FormattedBody";
import { VERIFICATION_REQUEST_MSGTYPE, VerificationRequestNotice } from "../crypto/VerificationRequestNotice";

const MEDIA_TYPES = new Set(["m.image", "m.audio", "m.video", "m.file"]);

/**
 * Drops the quoted fallback that older clients put before a reply's text ("> <@a:b> hi\n\n").
 * spec: client-server-api/_index.md#fallbacks-for-rich-replies
 */
export function stripReplyFallback(body: string): string {
  if (!body.startsWith("> ")) return body;
  const lines = body.split("\n");
  let index = 0;
  while (index < lines.length && lines[index]!.startsWith(">")) index++;
  if (index < lines.length && lines[index] === "") index++;
  return lines.slice(index).join("\n");
}

/** The text of a message for quotes and notifications. */
export function plainText(event: MatrixEvent): string {
  if (event.isRedacted()) return "Message deleted";
  if (event.isDecryptionFailure()) return "Unable to decrypt";
  const content = event.getContent();
  const body = typeof content.body === "string" ? content.body : "";
  return event.replyEventId ? stripReplyFallback(body) : body;
}

export function MessageBody(props: { event: MatrixEvent; senderName: string }) {
  const { event } = props;
  if (event.isRedacted()) return <p class="message-body deleted">Message deleted</p>;
  if (event.isDecryptionFailure()) return <UndecryptableNotice event={event} />;
  if (event.getType() === "m.room.encrypted") return <p class="message-body muted">Decrypting…</p>;
  const content = event.getContent();
  if (event.getType() === "m.sticker" || MEDIA_TYPES.has(content.msgtype ?? "")) return <MediaBody event={event} />;
  if (content.msgtype === VERIFICATION_REQUEST_MSGTYPE) return <VerificationRequestNotice event={event} senderName={props.senderName} />;
  const emote = content.msgtype === "m.emote";
  const className = emote ? "message-body emote" : content.msgtype === "m.notice" ? "message-body notice" : "message-body";
  const prefix = emote ? `* ${props.senderName} ` : undefined;
  // spec: client-server-api/modules/instant_messaging.md: formatted_body with format org.matrix.custom.html
  if (content.format === "org.matrix.custom.html" && typeof content.formatted_body === "string") {
    return <FormattedBody class={className} html={content.formatted_body} prefix={prefix} />;
  }
  return (
    <p class={className}>
      {prefix}
      <LinkifiedText text={plainText(event)} />
    </p>
  );
}

export function LinkifiedText(props: { text: string }) {
  return (
    <>
      {linkifyParts(props.text).map((part, index) =>
        part.href ? (
          <a key={index} href={part.href} target="_blank" rel="noopener noreferrer">
            {part.text}
          </a>
        ) : (
          part.text
        ),
      )}
    </>
  );
}
