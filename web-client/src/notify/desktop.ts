/**
 * Browser notifications for new messages while the tab is hidden: live events from
 * others that the user's push rules say notify, in rooms not muted.
 */
import {
  ClientEvent,
  EventType,
  MatrixEventEvent,
  RoomEvent,
  SyncState,
  type IRoomTimelineData,
  type MatrixClient,
  type MatrixEvent,
  type Room,
} from "matrix-js-sdk";
import { selectedRoomId } from "../state/app";
import { isRoomMuted } from "./mute";
import { notificationsAllowed } from "./permission";

export const NOTIFICATION_ICON = "/icons/icon-192.png";

export interface NotificationText {
  title: string;
  body: string;
}

/** What a message says in a notification: its text, or what kind of thing it is. */
export function describeEvent(event: MatrixEvent, myUserId: string): string {
  if (event.isDecryptionFailure() || event.getType() === EventType.RoomMessageEncrypted) return "Encrypted message";
  const content = event.getContent();
  if (event.getType() === EventType.RoomMember && event.getStateKey() === myUserId) return "invited you";
  if (event.getType() === EventType.Sticker) return "sent a sticker";
  switch (content.msgtype) {
    case "m.image":
      return "sent an image";
    case "m.audio":
      return "sent a voice message";
    case "m.video":
      return "sent a video";
    case "m.file":
      return `sent a file${typeof content.body === "string" ? `: ${content.body}` : ""}`;
    case "m.emote":
      return `* ${content.body ?? ""}`;
  }
  return typeof content.body === "string" && content.body ? content.body : "New message";
}

export function notificationText(event: MatrixEvent, room: Room, myUserId: string): NotificationText {
  const sender = room.getMember(event.getSender() ?? "")?.name ?? event.getSender() ?? "";
  const text = describeEvent(event, myUserId);
  // In a DM the room is named after the sender: "Alice — Alice: hi" would say it twice.
  return room.name === sender ? { title: sender, body: text } : { title: room.name, body: `${sender}: ${text}` };
}

export function shouldNotify(matrix: MatrixClient, event: MatrixEvent, room: Room): boolean {
  if (event.getSender() === matrix.getUserId()) return false;
  if (event.isRedacted() || event.isRelation("m.replace")) return false;
  if (isRoomMuted(room.roomId, matrix)) return false;
  return matrix.getPushActionsForEvent(event, true)?.notify === true;
}

/** Shows one notification; a click brings the tab forward and opens the room. */
export function showMessageNotification(text: NotificationText, roomId: string): Notification {
  // tag: one notification per room, each new message replacing the last (the service
  // worker's Web Push notifications use the same tag, so the two never stack).
  const notification = new Notification(text.title, { body: text.body, tag: roomId, icon: NOTIFICATION_ICON });
  notification.onclick = () => {
    window.focus();
    selectedRoomId.value = roomId;
    notification.close();
  };
  return notification;
}

function pageHidden(): boolean {
  return document.visibilityState === "hidden";
}

export function watchForNotifications(matrix: MatrixClient): () => void {
  // Events of the initial sync (and those replayed from the cache) are history, not news.
  let live = matrix.isInitialSyncComplete();
  // A decryption that finishes after sign-out must not raise the last account's message.
  let stopped = false;
  const onSync = (state: SyncState) => {
    if (state === SyncState.Prepared || state === SyncState.Syncing) live = true;
  };

  const consider = (event: MatrixEvent, room: Room) => {
    if (stopped || !pageHidden() || !notificationsAllowed()) return;
    if (!shouldNotify(matrix, event, room)) return;
    showMessageNotification(notificationText(event, room, matrix.getUserId() ?? ""), room.roomId);
  };

  const onTimeline = (
    event: MatrixEvent,
    room: Room | undefined,
    toStartOfTimeline: boolean | undefined,
    _removed: boolean,
    data: IRoomTimelineData,
  ) => {
    if (!live || !room || toStartOfTimeline || !data.liveEvent) return;
    if (event.getSender() === matrix.getUserId()) return;
    // Encrypted: the push rules (and the text) need the cleartext, which comes later.
    if (event.isBeingDecrypted() || event.shouldAttemptDecryption()) {
      event.once(MatrixEventEvent.Decrypted, () => consider(event, room));
    } else consider(event, room);
  };

  const onInvite = (room: Room, membership: string) => {
    if (!live || membership !== "invite") return;
    const invite = room.currentState.getStateEvents(EventType.RoomMember, matrix.getUserId() ?? "");
    if (invite && pageHidden() && notificationsAllowed() && !isRoomMuted(room.roomId, matrix)) {
      showMessageNotification(notificationText(invite, room, matrix.getUserId() ?? ""), room.roomId);
    }
  };

  matrix.on(ClientEvent.Sync, onSync);
  matrix.on(RoomEvent.Timeline, onTimeline);
  matrix.on(RoomEvent.MyMembership, onInvite);
  return () => {
    stopped = true;
    matrix.off(ClientEvent.Sync, onSync);
    matrix.off(RoomEvent.Timeline, onTimeline);
    matrix.off(RoomEvent.MyMembership, onInvite);
  };
}
