/**
 * Feeds the local search index from matrix-js-sdk: every message of an encrypted
 * room once it is decrypted — live (sync), from the stored timelines at start, and
 * from back-pagination — replacing the text of edited messages and dropping
 * redacted ones.
 */
import {
  ClientEvent,
  EventType,
  MatrixEventEvent,
  RelationType,
  RoomEvent,
  type MatrixClient,
  type MatrixEvent,
  type Room,
} from "matrix-js-sdk";
import { LocalSearchIndex, deleteSearchDatabase, type IndexedMessage, type UnreadTest } from "./localIndex";

let current: { index: LocalSearchIndex; stop: () => void } | null = null;
let stopCurrent: (() => void) | null = null;
let opening: Promise<LocalSearchIndex> | null = null;

/** The running index, once open (null before sign-in or while opening). */
export function getLocalSearchIndex(): Promise<LocalSearchIndex | null> {
  return opening ?? Promise.resolve(current?.index ?? null);
}

/** Starts indexing `client`'s encrypted messages; returns the function that stops it. */
export function startLocalSearchIndex(client: MatrixClient): () => void {
  let stopped = false;
  const userId = client.getUserId() ?? "";
  const listeners: [string, (...args: never[]) => void][] = [];
  opening = LocalSearchIndex.open(userId).catch((error) => {
    console.warn("search: IndexedDB unavailable, the local index is kept in memory", error);
    return LocalSearchIndex.inMemory();
  });
  const ready = opening;
  void ready.then((index) => {
    opening = null;
    if (stopped) return index.close();
    const feed = (events: MatrixEvent[]) => void ingest(index, events).catch((e) => console.warn("search: indexing failed", e));
    const onTimeline = (event: MatrixEvent, room: Room | undefined) => {
      if (room?.hasEncryptionStateEvent() || event.isEncrypted()) feed([event]);
    };
    const onDecrypted = (event: MatrixEvent) => feed([event]);
    const onRedaction = (redaction: MatrixEvent) => {
      const target = redaction.getAssociatedId();
      if (target) void index.remove([target]);
    };
    const onRoom = (room: Room) => feed(room.getLiveTimeline().getEvents());
    listeners.push(
      [RoomEvent.Timeline, onTimeline as never],
      [MatrixEventEvent.Decrypted, onDecrypted as never],
      [RoomEvent.Redaction, onRedaction as never],
      [ClientEvent.Room, onRoom as never],
    );
    const emitter = client as unknown as { on(e: string, l: unknown): void };
    for (const [event, listener] of listeners) emitter.on(event, listener);
    current = { index, stop: () => index.close() };
    for (const room of client.getRooms()) onRoom(room);
  });
  const stop = () => {
    stopped = true;
    const emitter = client as unknown as { off(e: string, l: unknown): void };
    for (const [event, listener] of listeners) emitter.off(event, listener);
    current?.stop();
    current = null;
    if (stopCurrent === stop) stopCurrent = null;
  };
  stopCurrent?.();
  stopCurrent = stop;
  return stop;
}

/** Stops the index and deletes its database (sign out). */
export async function clearLocalSearchIndex(): Promise<void> {
  await getLocalSearchIndex();
  stopCurrent?.();
  await deleteSearchDatabase().catch((error) => console.warn("search: could not delete the local index", error));
}

/** Adds the decrypted messages among `events`, applies edits, drops redacted ones. */
export async function ingest(index: LocalSearchIndex, events: MatrixEvent[]): Promise<void> {
  const puts: IndexedMessage[] = [];
  const removals: string[] = [];
  for (const event of events) {
    const eventId = event.getId();
    const roomId = event.getRoomId();
    if (!eventId || !roomId || eventId.startsWith("~")) continue; // "~": a local echo, not sent yet
    if (event.isRedacted()) {
      // A redacted event loses its decrypted content (and type): forget it by ID.
      removals.push(eventId);
      continue;
    }
    if (!event.isEncrypted() || event.isBeingDecrypted() || event.isDecryptionFailure()) continue;
    if (event.getType() !== EventType.RoomMessage) continue;
    const content = event.getContent();
    // The relation of an encrypted event is in its cleartext wire content; look in both.
    const relation = event.getRelation() ?? (content["m.relates_to"] as { rel_type?: string; event_id?: string } | undefined);
    if (relation?.rel_type === RelationType.Replace && relation.event_id) {
      // spec: client-server-api/_index.md#event-replacements — the new text is in m.new_content.
      const original = index.get(relation.event_id);
      const replacement = content["m.new_content"] as { body?: unknown; msgtype?: unknown } | undefined;
      // An edit only counts from the original's sender (spec: client-server-api/_index.md#validity-of-replacement-events).
      if (original && original.sender === event.getSender() && typeof replacement?.body === "string") {
        puts.push({ ...original, body: replacement.body, msgtype: String(replacement.msgtype ?? original.msgtype) });
      }
      continue;
    }
    if (typeof content.body !== "string") continue;
    // A message shown edited indexes its newest text.
    const edit = event.replacingEvent()?.getContent()["m.new_content"] as { body?: unknown } | undefined;
    const body = typeof edit?.body === "string" ? edit.body : content.body;
    puts.push({
      eventId,
      roomId,
      sender: event.getSender() ?? "",
      ts: event.getTs(),
      msgtype: String(content.msgtype ?? "m.text"),
      body,
    });
  }
  if (removals.length) await index.remove(removals);
  if (puts.length) await index.put(puts);
}

/** "Unread": another user's message after the user's read receipt (all of a room's, without one). */
export function unreadTest(client: MatrixClient): UnreadTest {
  const me = client.getUserId() ?? "";
  return (message) => {
    if (message.sender === me) return false;
    const room = client.getRoom(message.roomId);
    if (!room) return false;
    if (room.findEventById(message.eventId)) return !room.hasUserReadEvent(me, message.eventId);
    const upTo = room.getEventReadUpTo(me);
    if (!upTo) return true;
    const readTs = room.findEventById(upTo)?.getTs() ?? room.getReadReceiptForUserId(me)?.data.ts;
    return readTs === undefined || message.ts > readTs;
  };
}
