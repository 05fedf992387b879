/**
 * The one-line preview of a room's latest event in the room list ("Alice: hi",
 * "Image", "Encrypted message").  Works on a plain description of the event so it
 * is testable without the SDK; summary.ts builds that description.
 */

export interface PreviewSource {
  type: string;
  content: Record<string, unknown>;
  /** The sender's display name, or "You" for one's own events. */
  senderName: string;
  stateKeyName?: string;
  /** For m.room.member: the membership before this event (unsigned.prev_content). */
  prevMembership?: string;
  redacted?: boolean;
  /** Encrypted and not (yet) decryptable. */
  undecryptable?: boolean;
  /** An edit (m.replace) or a reaction: not shown as a message of its own. */
  relationOnly?: boolean;
  /**
   * Part of the room's creation (its first name, topic, image, encryption, the
   * creator's join): "You renamed the room" would be wrong for a name given at creation.
   */
  initialSetup?: boolean;
}

const MSGTYPE_LABELS: Record<string, string> = {
  "m.image": "Image",
  "m.video": "Video",
  "m.audio": "Audio",
  "m.file": "File",
  "m.location": "Location",
  "m.sticker": "Sticker",
  // An in-room verification request: its body is a fallback for clients without verification.
  "m.key.verification.request": "Verification request",
};

/** Whether an event deserves a line in the room list at all. */
export function isPreviewable(source: PreviewSource): boolean {
  if (source.relationOnly || source.initialSetup) return false;
  return ["m.room.message", "m.room.encrypted", "m.sticker", "m.room.member", "m.room.name", "m.room.topic", "m.room.avatar", "m.room.create", "m.room.encryption"].includes(source.type);
}

export function previewText(source: PreviewSource): string {
  const who = source.senderName;
  if (source.redacted) return `${who}: Message deleted`;
  if (source.undecryptable || source.type === "m.room.encrypted") return `${who}: Encrypted message`;
  const content = source.content;
  switch (source.type) {
    case "m.sticker":
      return `${who}: Sticker`;
    case "m.room.message": {
      const msgtype = String(content.msgtype ?? "m.text");
      // MSC3245 voice messages are m.audio with this marker.
      if (msgtype === "m.audio" && ("org.matrix.msc3245.voice" in content || "org.matrix.msc3245.voice.v2" in content)) return `${who}: Voice message`;
      const label = MSGTYPE_LABELS[msgtype];
      if (label) return `${who}: ${label}`;
      const body = typeof content.body === "string" ? firstLine(content.body) : "";
      if (msgtype === "m.emote") return `* ${who} ${body}`;
      return `${who}: ${body}`;
    }
    case "m.room.member":
      return memberPreview(source);
    case "m.room.name":
      return `${who} renamed the room`;
    case "m.room.topic":
      return `${who} changed the topic`;
    case "m.room.avatar":
      return `${who} changed the room image`;
    case "m.room.create":
      return `${who} created the room`;
    case "m.room.encryption":
      return `${who} turned on encryption`;
    default:
      return "";
  }
}

function memberPreview(source: PreviewSource): string {
  const who = source.senderName;
  const target = source.stateKeyName ?? who;
  switch (source.content.membership) {
    case "join":
      return `${target} joined`;
    case "invite":
      return `${who} invited ${target}`;
    case "leave":
      if (source.prevMembership === "ban") return `${who} unbanned ${target}`;
      if (source.prevMembership === "invite") return target === who ? `${target} declined the invite` : `${who} withdrew ${target}'s invite`;
      return target === who ? `${target} left` : `${who} removed ${target}`;
    case "ban":
      return `${who} banned ${target}`;
    case "knock":
      return `${target} asked to join`;
    default:
      return "";
  }
}

function firstLine(body: string): string {
  // Replies carry a "> <@alice> quoted" fallback before a blank line (older clients; spec: client-server-api/modules/rich_replies.md).
  const lines = body.split("\n");
  const start = lines[0]?.startsWith("> ") ? lines.findIndex((line) => line === "") + 1 : 0;
  return (lines[start] ?? "").trim();
}
