/**
 * The event contents the timeline sends: messages, replies, edits and reactions.
 * spec: client-server-api/_index.md#rich-replies, #event-replacements (m.replace),
 * modules/event_annotations.md (m.annotation).
 */
import { markdownToHtml } from "../../format/markdown";

export type Content = Record<string, unknown>;

const HTML_FORMAT = "org.matrix.custom.html";

/** `body` is the text as typed; the HTML only when the markdown in it formats something. */
function text(body: string, prefix = ""): Content {
  const html = markdownToHtml(body);
  const content: Content = { msgtype: "m.text", body: prefix + body };
  if (html !== null) Object.assign(content, { format: HTML_FORMAT, formatted_body: prefix + html });
  return content;
}

export function textMessage(typed: string, replyToEventId?: string): Content {
  const content = text(typed);
  if (replyToEventId) content["m.relates_to"] = { "m.in_reply_to": { event_id: replyToEventId } };
  return content;
}

/** An edit: `m.new_content` is what clients that understand edits show; `body` is the fallback. */
export function replacement(originalEventId: string, typed: string): Content {
  return {
    ...text(typed, "* "),
    "m.new_content": text(typed),
    "m.relates_to": { rel_type: "m.replace", event_id: originalEventId },
  };
}

export function reaction(targetEventId: string, key: string): Content {
  return { "m.relates_to": { rel_type: "m.annotation", event_id: targetEventId, key } };
}

/** The quick reactions offered in a message's menu. */
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🎉"] as const;
