/**
 * The outbox: every event the UI sends is written to IndexedDB first, then sent, one
 * room at a time in the order it was queued.  A network failure leaves it queued and
 * it is sent again, with the same transaction ID, when the connection returns: the
 * server answers a repeated transaction ID with the event it already has
 * (spec: client-server-api/_index.md#transaction-identifiers), so a message whose
 * first attempt did reach the server is not duplicated.
 *
 * outboxItems lists every message the server has not accepted yet.  The SDK also
 * holds a local echo of it (room.getPendingEvents(), same txnId; restored by the SDK
 * after a reload): that is the same message, not a second one.  A failed echo is
 * kept, not cancelled, because the SDK reserves a txnId for good once it has seen
 * it: the retry resends that echo (client.resendEvent), which reuses its txnId.
 *
 * Nothing is sent before the client is ready (its rooms are known and crypto has
 * started or definitely failed), and never without its Room: matrix-js-sdk sends an
 * event for a room it does not know unencrypted.  An item queued for an encrypted
 * room goes out only through running crypto.
 */
import { signal } from "@preact/signals";
import { ClientEvent, EventStatus, RoomEvent, type MatrixClient, type MatrixEvent, type Room, type TimelineEvents } from "matrix-js-sdk";
import { appDb, type OutboxRecord, type OutboxState } from "./db";

export type OutboxItem = Readonly<OutboxRecord>;

/** Every unsent item, oldest first.  Written by this module only. */
export const outboxItems = signal<readonly OutboxItem[]>([]);

/** What the outbox needs of matrix-js-sdk's MatrixClient (a fake one in the unit tests). */
export type OutboxClient = Pick<MatrixClient, "sendEvent" | "resendEvent" | "getRoom" | "getCrypto" | "cancelPendingEvent" | "on" | "off">;

const FIRST_RETRY_MS = 2000;
const MAX_RETRY_MS = 60_000;
/** How long an echo the SDK is already sending may hold its room before the outbox tries again. */
const ECHO_WAIT_MS = 60_000;

let matrix: OutboxClient | null = null;
let loaded: Promise<void> | null = null;
/** Settles when the client may send: its rooms are known and crypto has started or failed for good. */
let ready: Promise<unknown> = Promise.resolve();
const flushing = new Set<string>();
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let retryDelay = FIRST_RETRY_MS;
let nextSeq = 1;
/** Bumped by stopOutbox, so sends still in flight from the last client change nothing. */
let generation = 0;

/**
 * Starts the outbox for this client: loads what an earlier page left in IndexedDB,
 * and sends it once `clientReady` settles (see the module comment).  Call before the
 * client starts syncing, so remote echoes of items that did reach the server are
 * recognised.  Resolves when the items are loaded.
 */
export function startOutbox(client: OutboxClient, clientReady: Promise<unknown>): Promise<void> {
  stopOutbox();
  matrix = client;
  ready = clientReady;
  client.on(RoomEvent.Timeline, onTimelineEvent);
  client.on(ClientEvent.Room, onRoomKnown);
  loaded = loadItems();
  void loaded.then(() => flushOutbox());
  return loaded;
}

export function stopOutbox(): void {
  generation++;
  matrix?.off(RoomEvent.Timeline, onTimelineEvent);
  matrix?.off(ClientEvent.Room, onRoomKnown);
  matrix = null;
  loaded = null;
  ready = Promise.resolve();
  flushing.clear();
  clearTimeout(retryTimer);
  retryTimer = undefined;
  retryDelay = FIRST_RETRY_MS;
  outboxItems.value = [];
}

/** Queues an event for a room and returns its transaction ID at once. */
export async function queueEvent(roomId: string, eventType: string, content: Record<string, unknown>): Promise<string> {
  await loaded;
  const room = matrix?.getRoom(roomId);
  const item: OutboxRecord = {
    txnId: makeTxnId(),
    roomId,
    eventType,
    content,
    createdTs: Date.now(),
    seq: nextSeq++,
    state: "queued",
    encrypted: room ? roomIsEncrypted(room) : undefined,
  };
  await (await appDb()).put("outbox", item);
  outboxItems.value = [...outboxItems.value, item];
  void flushRoom(roomId);
  return item.txnId;
}

/** Sends a failed item again (same transaction ID). */
export async function retryItem(txnId: string): Promise<void> {
  const item = find(txnId);
  if (!item || item.state === "sending") return;
  await update(txnId, { state: "queued", error: undefined });
  void flushRoom(item.roomId);
}

/** Drops an unsent item. */
export async function discardItem(txnId: string): Promise<void> {
  const item = find(txnId);
  if (!item) return;
  cancelLocalEcho(item.roomId, txnId);
  await remove(txnId);
}

/** Sends everything queued (the connection came back, or the client started). */
export async function flushOutbox(): Promise<void> {
  clearTimeout(retryTimer);
  retryTimer = undefined;
  const rooms = new Set(outboxItems.value.filter((item) => item.state === "queued").map((item) => item.roomId));
  await Promise.all([...rooms].map(flushRoom));
}

async function flushRoom(roomId: string): Promise<void> {
  if (flushing.has(roomId)) return;
  flushing.add(roomId);
  const run = generation;
  try {
    await ready;
    for (;;) {
      const client = matrix;
      if (run !== generation) return; // signed out meanwhile
      // A failed item waits for retry/discard without holding back the room's
      // later messages: it will not be delivered as it is.
      const item = outboxItems.value.find((it) => it.roomId === roomId && it.state !== "failed");
      if (!client || !item) return;
      const room = client.getRoom(roomId);
      // An unknown room would be sent to in the clear: wait until the sync brings it (onRoomKnown).
      if (!room) return;
      if (alreadyInRoom(room, item.txnId)) {
        await remove(item.txnId);
        continue;
      }
      if ((item.encrypted || roomIsEncrypted(room)) && !client.getCrypto()) {
        // `ready` has settled, so crypto has failed for good in this session.
        await update(item.txnId, { state: "failed", error: "Not sent: encryption is unavailable in this session" });
        continue;
      }
      await update(item.txnId, { state: "sending" });
      try {
        await send(client, room, item);
        if (run !== generation) return; // signed out meanwhile: its database is gone
        retryDelay = FIRST_RETRY_MS;
        await remove(item.txnId);
      } catch (error) {
        if (run !== generation) return;
        if (!find(item.txnId)) continue; // discarded, or its remote echo came meanwhile
        const status = (error as { httpStatus?: number }).httpStatus;
        if (status === 429) {
          await update(item.txnId, { state: "queued" });
          await sleep(retryAfterMs(error) ?? FIRST_RETRY_MS);
          if (run !== generation) return;
        } else if (status !== undefined && status >= 400 && status < 500) {
          await update(item.txnId, { state: "failed", error: describe(error) });
        } else {
          // No answer, or a server error: keep it and try again later, in order.
          await update(item.txnId, { state: "queued" });
          scheduleRetry();
          return;
        }
      }
    }
  } finally {
    // A stop meanwhile cleared the set; a new client's flush of this room may own it now.
    if (run === generation) flushing.delete(roomId);
  }
}

/** Whether events sent to the room must be encrypted (spec: client-server-api/modules/end_to_end_encryption.md). */
function roomIsEncrypted(room: Room): boolean {
  return room.hasEncryptionStateEvent?.() === true;
}

/**
 * One attempt, for a room the client knows (so the SDK encrypts when the room is
 * encrypted): the first through sendEvent, later ones by resending the SDK's echo
 * (same txnId).
 */
async function send(client: OutboxClient, room: Room, item: OutboxItem): Promise<void> {
  const echo = room.getEventForTxnId?.(item.txnId);
  if (!echo) {
    // The outbox sends whatever the UI queued: event type and content are only known at run time.
    const type = item.eventType as keyof TimelineEvents;
    await client.sendEvent(item.roomId, type, item.content as TimelineEvents[typeof type], item.txnId);
    return;
  }
  switch (echo.status) {
    case EventStatus.NOT_SENT:
      await client.resendEvent(echo, room);
      return;
    case EventStatus.SENT:
    case null:
      return; // the server has it
    case EventStatus.CANCELLED:
      throw Object.assign(new Error("The message was cancelled"), { httpStatus: 400 });
    default:
      // Being sent already (e.g. the SDK restored it and something resent it): wait for
      // the outcome, but not forever; a timeout counts as no answer (tried again later).
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          room.off(RoomEvent.LocalEchoUpdated, onUpdate);
        };
        const onUpdate = (event: MatrixEvent) => {
          if (event !== echo || echo.status === EventStatus.SENDING || echo.status === EventStatus.ENCRYPTING || echo.status === EventStatus.QUEUED) return;
          done();
          if (echo.status === EventStatus.SENT) resolve();
          else reject(echo.error ?? new Error(`not sent (${echo.status})`));
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no outcome of the send after ${ECHO_WAIT_MS / 1000} s`));
        }, ECHO_WAIT_MS);
        room.on(RoomEvent.LocalEchoUpdated, onUpdate);
      });
  }
}

function scheduleRetry(): void {
  if (retryTimer !== undefined) return;
  retryTimer = setTimeout(() => {
    retryTimer = undefined;
    void flushOutbox();
  }, retryDelay);
  retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS);
}

/** A room the client did not know when its items were due (a new room, the first sync): send them now. */
function onRoomKnown(room: Room): void {
  if (outboxItems.value.some((item) => item.roomId === room.roomId && item.state === "queued")) void flushRoom(room.roomId);
}

/** The remote echo of an item: the server has it, so it leaves the outbox. */
function onTimelineEvent(event: MatrixEvent): void {
  const txnId = event.getUnsigned()?.transaction_id;
  if (txnId && find(txnId) && find(txnId)!.state !== "sending") void remove(txnId);
}

/** Whether the room's recent timeline already holds the remote echo of txnId (sent before a reload). */
function alreadyInRoom(room: Room | null, txnId: string): boolean {
  const events = room?.getLiveTimeline?.().getEvents() ?? [];
  for (let i = events.length - 1, seen = 0; i >= 0 && seen < 200; i--, seen++) {
    if (events[i].getUnsigned()?.transaction_id === txnId && !events[i].status) return true;
  }
  return false;
}

/** The SDK's local echo of a discarded item goes too. */
function cancelLocalEcho(roomId: string, txnId: string): void {
  const pending = matrix?.getRoom(roomId)?.getPendingEvents?.() ?? [];
  for (const event of pending) {
    if (event.getTxnId() !== txnId) continue;
    try {
      matrix?.cancelPendingEvent(event);
    } catch {
      // It is being sent or already sent: nothing to cancel.
    }
  }
}

async function loadItems(): Promise<void> {
  const db = await appDb();
  const records = await db.getAllFromIndex("outbox", "seq");
  // A send in flight when the page closed is unknown: send again (same txnId).
  outboxItems.value = records.map((record) => (record.state === "sending" ? { ...record, state: "queued" as OutboxState } : record));
  nextSeq = Math.max(nextSeq, ...records.map((record) => record.seq + 1));
}

function find(txnId: string): OutboxItem | undefined {
  return outboxItems.value.find((item) => item.txnId === txnId);
}

async function update(txnId: string, changes: Partial<OutboxRecord>): Promise<void> {
  const current = find(txnId);
  if (!current) return;
  const next = { ...current, ...changes };
  if (next.error === undefined) delete next.error;
  outboxItems.value = outboxItems.value.map((item) => (item.txnId === txnId ? next : item));
  await (await appDb()).put("outbox", next);
}

async function remove(txnId: string): Promise<void> {
  outboxItems.value = outboxItems.value.filter((item) => item.txnId !== txnId);
  await (await appDb()).delete("outbox", txnId);
}

function makeTxnId(): string {
  const random = globalThis.crypto?.randomUUID?.() ?? `${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  return `hs.${Date.now()}.${random}`;
}

function retryAfterMs(error: unknown): number | null {
  try {
    return (error as { getRetryAfterMs?: () => number | null }).getRetryAfterMs?.() ?? null;
  } catch {
    return null;
  }
}

function describe(error: unknown): string {
  const e = error as { errcode?: string; data?: { error?: string }; message?: string };
  return e.data?.error ?? e.message ?? e.errcode ?? String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
