/**
 * What our server's Web Push carries (docs/push.md, "Web Push pushers"), decrypted by
 * the browser, and the notification the service worker shows for it.  Kept free of
 * imports: the service worker bundles it.
 */
export interface PushPayload {
  event_id?: string;
  room_id?: string;
  type?: string;
  sender?: string;
  sender_display_name?: string;
  room_name?: string;
  prio?: string;
  counts?: { unread?: number };
  content?: { body?: unknown; msgtype?: unknown; membership?: unknown };
}

const MEDIA_TEXT: Record<string, string> = {
  "m.image": "sent an image",
  "m.audio": "sent a voice message",
  "m.video": "sent a video",
  "m.file": "sent a file",
};

export function pushNotificationText(payload: PushPayload): { title: string; body: string } {
  const sender = payload.sender_display_name || payload.sender || "Someone";
  const content = payload.content;
  // Encrypted events carry no content (the worker has no keys), nor do oversized ones.
  let text = "New message";
  if (payload.type === "m.room.member" && content?.membership === "invite") text = "invited you";
  else if (typeof content?.msgtype === "string" && MEDIA_TEXT[content.msgtype]) text = MEDIA_TEXT[content.msgtype];
  else if (typeof content?.body === "string" && content.body) text = content.body;
  const title = payload.room_name || sender;
  return { title, body: title === sender ? text : `${sender}: ${text}` };
}
