import { beforeEach, describe, expect, it, vi } from "vitest";
import { IDBFactory } from "fake-indexeddb";

type Outbox = typeof import("../../src/offline/outbox");

/**
 * A MatrixClient as far as the outbox uses it, modelled on matrix-js-sdk: sendEvent
 * makes a local echo registered under its txnId (and refuses a txnId it has seen,
 * even after a cancel, as Room.addPendingEvent does), a failed send leaves the echo
 * "not_sent", resendEvent resends it, and the remote echo releases the txnId.
 */
type Echo = { txnId: string; status: string; content: { body?: unknown }; getTxnId(): string };
function fakeClient() {
  const listeners = new Map<string, ((event: unknown) => void)[]>();
  const txnToEvent = new Map<string, Echo>();
  const room = {
    getEventForTxnId: (txnId: string) => txnToEvent.get(txnId),
    roomId: "!a",
    encrypted: false,
    hasEncryptionStateEvent: () => room.encrypted,
    getPendingEvents: () => [...txnToEvent.values()].filter((echo) => echo.status !== "cancelled"),
    on: () => undefined,
    off: () => undefined,
  };
  async function attempt(roomId: string, echo: Echo) {
    echo.status = "sending";
    const outcome = client.outcomes.shift() ?? "ok";
    await Promise.resolve();
    if (outcome === "hang") return new Promise(() => undefined);
    if (outcome === "ok") {
      echo.status = "sent";
      client.sent.push({ roomId, txnId: echo.txnId, body: echo.content.body });
      return { event_id: `$${echo.txnId}` };
    }
    echo.status = "not_sent";
    if (typeof outcome === "object") throw Object.assign(new Error("slow down"), { httpStatus: 429, getRetryAfterMs: () => outcome.retryAfterMs });
    if (outcome === "network") throw Object.assign(new Error("fetch failed"), { name: "ConnectionError" });
    throw Object.assign(new Error("refused"), { httpStatus: outcome, errcode: "M_FORBIDDEN", data: { error: "You are not allowed" } });
  }
  const client = {
    sent: [] as { roomId: string; txnId: string; body: unknown }[],
    /** What the next attempts do: "ok", "network" or an HTTP status. */
    outcomes: [] as ("ok" | "network" | "hang" | number | { retryAfterMs: number })[],
    cancelled: [] as string[],
    sendEvent: vi.fn(async (roomId: string, _type: string, content: { body?: unknown }, txnId: string) => {
      if (txnToEvent.has(txnId)) throw new Error("addPendingEvent called on an event with known txnId " + txnId);
      const echo: Echo = { txnId, status: "sending", content, getTxnId: () => txnId };
      txnToEvent.set(txnId, echo);
      return attempt(roomId, echo);
    }),
    resendEvent: vi.fn(async (echo: Echo) => {
      if (echo.status !== "not_sent") throw new Error("resend of an event with status " + echo.status);
      return attempt("!a", echo);
    }),
    /** Whether the client knows the room (matrix-js-sdk's getRoom returns null before the sync brings it). */
    roomKnown: true,
    /** Whether Rust crypto runs (getCrypto() is undefined when it did not start). */
    cryptoRunning: false,
    getRoom: () => (client.roomKnown ? room : null),
    getCrypto: () => (client.cryptoRunning ? {} : undefined),
    room,
    /** The sync brought the room (ClientEvent.Room). */
    roomArrives: () => {
      client.roomKnown = true;
      for (const listener of listeners.get("Room") ?? []) listener(room);
    },
    cancelPendingEvent: vi.fn((echo: Echo) => {
      client.cancelled.push(echo.txnId);
      echo.status = "cancelled";
    }),
    on: (name: string, listener: (event: unknown) => void) => listeners.set(name, [...(listeners.get(name) ?? []), listener]),
    off: (name: string, listener: (event: unknown) => void) => listeners.set(name, (listeners.get(name) ?? []).filter((l) => l !== listener)),
    /** The server's remote echo of a sent event reaching the client. */
    echo: (txnId: string) => {
      txnToEvent.delete(txnId);
      for (const listener of listeners.get("Room.timeline") ?? []) listener({ getUnsigned: () => ({ transaction_id: txnId }) });
    },
    /** Every txnId the server was asked to store, first attempts and retries. */
    attempts: () => [...client.sendEvent.mock.calls.map((call) => call[3] as string), ...client.resendEvent.mock.calls.map((call) => (call[0] as Echo).txnId)],
  };
  return client;
}

/** A fresh copy of the outbox module, as after a page reload. */
async function loadOutbox(): Promise<Outbox> {
  vi.resetModules();
  return import("../../src/offline/outbox");
}

async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

describe("outbox", () => {
  beforeEach(() => {
    // Each test starts with an empty browser profile.
    globalThis.indexedDB = new IDBFactory();
  });

  it("sends a room's messages in the order they were queued", async () => {
    const outbox = await loadOutbox();
    const client = fakeClient();
    await outbox.startOutbox(client as never, Promise.resolve());
    const ids = [];
    for (const body of ["one", "two", "three"]) ids.push(await outbox.queueEvent("!a", "m.room.message", { msgtype: "m.text", body }));
    await settle();
    expect(client.sent.map((s) => s.body)).toEqual(["one", "two", "three"]);
    expect(client.sent.map((s) => s.txnId)).toEqual(ids);
    expect(outbox.outboxItems.value).toEqual([]);
  });

  it("keeps a message through a network failure and retries it once with the same txnId", async () => {
    const outbox = await loadOutbox();
    const client = fakeClient();
    client.outcomes = ["network", "network"];
    await outbox.startOutbox(client as never, Promise.resolve());
    const txnId = await outbox.queueEvent("!a", "m.room.message", { body: "hello" });
    await settle();
    // A message queued behind it waits (and sends the stuck one's retry first).
    const later = await outbox.queueEvent("!a", "m.room.message", { body: "after" });
    await settle();
    // Failed once: still queued, both of them, and the SDK's NOT_SENT echo is gone.
    expect(outbox.outboxItems.value.map((item) => [item.txnId, item.state])).toEqual([
      [txnId, "queued"],
      [later, "queued"],
    ]);
    expect(client.sent).toEqual([]);

    await outbox.flushOutbox(); // the connection returned
    await settle();
    expect(client.sent.map((s) => s.txnId)).toEqual([txnId, later]);
    expect(client.attempts().sort()).toEqual([txnId, txnId, txnId, later].sort());
    expect(client.sendEvent.mock.calls.map((call) => call[3])).toEqual([txnId, later]); // then resends of the same echo
    expect(outbox.outboxItems.value).toEqual([]);
  });

  it("marks a refused message failed, goes on with the next, and can retry or discard it", async () => {
    const outbox = await loadOutbox();
    const client = fakeClient();
    client.outcomes = [403];
    await outbox.startOutbox(client as never, Promise.resolve());
    const refused = await outbox.queueEvent("!a", "m.room.message", { body: "no" });
    await outbox.queueEvent("!a", "m.room.message", { body: "yes" });
    await settle();
    expect(client.sent.map((s) => s.body)).toEqual(["yes"]);
    expect(outbox.outboxItems.value).toMatchObject([{ txnId: refused, state: "failed", error: "You are not allowed" }]);

    await outbox.retryItem(refused);
    await settle();
    expect(client.sent.map((s) => s.txnId)).toContain(refused);
    expect(outbox.outboxItems.value).toEqual([]);

    client.outcomes = [403];
    const dropped = await outbox.queueEvent("!a", "m.room.message", { body: "drop me" });
    await settle();
    await outbox.discardItem(dropped);
    expect(outbox.outboxItems.value).toEqual([]);
    expect(client.cancelled).toEqual([dropped]);
  });

  it("survives a reload and sends what was queued, with the same txnIds, in order", async () => {
    const before = await loadOutbox();
    const offline = fakeClient();
    offline.outcomes = Array(10).fill("network");
    await before.startOutbox(offline as never, Promise.resolve());
    const first = await before.queueEvent("!a", "m.room.message", { body: "first" });
    await settle();
    const second = await before.queueEvent("!a", "m.room.message", { body: "second" });
    await settle();
    expect(offline.sent).toEqual([]);
    expect(offline.attempts()).not.toContain(second); // never ahead of the first
    before.stopOutbox();

    const after = await loadOutbox(); // new module state over the same IndexedDB
    const online = fakeClient();
    await after.startOutbox(online as never, Promise.resolve());
    await settle();
    expect(online.sent.map((s) => [s.txnId, s.body])).toEqual([
      [first, "first"],
      [second, "second"],
    ]);
    expect(after.outboxItems.value).toEqual([]);
    // and nothing is left for a third load
    const third = await loadOutbox();
    const again = fakeClient();
    await third.startOutbox(again as never, Promise.resolve());
    await settle();
    expect(again.sent).toEqual([]);
  });

  it("drops an item whose remote echo arrives (it reached the server before the answer was lost)", async () => {
    const outbox = await loadOutbox();
    const client = fakeClient();
    client.outcomes = ["network"];
    await outbox.startOutbox(client as never, Promise.resolve());
    const txnId = await outbox.queueEvent("!a", "m.room.message", { body: "hi" });
    await settle();
    expect(outbox.outboxItems.value).toHaveLength(1);
    client.echo(txnId);
    await settle();
    expect(outbox.outboxItems.value).toEqual([]);
    await outbox.flushOutbox();
    expect(client.attempts()).toEqual([txnId]);
  });

  it("sends different rooms independently", async () => {
    const outbox = await loadOutbox();
    const client = fakeClient();
    client.outcomes = ["network"];
    await outbox.startOutbox(client as never, Promise.resolve());
    await outbox.queueEvent("!a", "m.room.message", { body: "stuck" });
    await settle();
    await outbox.queueEvent("!b", "m.room.message", { body: "other room" });
    await settle();
    expect(client.sent.map((s) => s.roomId)).toEqual(["!b"]);
  });

  it("never sends for a room the client does not know (the SDK would send it unencrypted)", async () => {
    const outbox = await loadOutbox();
    const client = fakeClient();
    client.roomKnown = false;
    await outbox.startOutbox(client as never, Promise.resolve());
    await outbox.queueEvent("!a", "m.room.message", { body: "secret" });
    await settle();
    expect(client.sendEvent).not.toHaveBeenCalled();
    expect(outbox.outboxItems.value).toMatchObject([{ state: "queued" }]);

    client.room.encrypted = true;
    client.cryptoRunning = true;
    client.roomArrives();
    await settle();
    expect(client.sent.map((s) => s.body)).toEqual(["secret"]);
  });

  it("sends nothing before the client is ready", async () => {
    const outbox = await loadOutbox();
    const client = fakeClient();
    let markReady!: () => void;
    await outbox.startOutbox(client as never, new Promise<void>((resolve) => (markReady = resolve)));
    await outbox.queueEvent("!a", "m.room.message", { body: "early" });
    await settle();
    expect(client.sendEvent).not.toHaveBeenCalled();
    markReady();
    await settle();
    expect(client.sent.map((s) => s.body)).toEqual(["early"]);
  });

  it("never sends an item of an encrypted room without crypto, even if the room no longer looks encrypted", async () => {
    const outbox = await loadOutbox();
    const client = fakeClient();
    client.room.encrypted = true;
    client.cryptoRunning = true;
    let markReady!: () => void;
    await outbox.startOutbox(client as never, new Promise<void>((resolve) => (markReady = resolve)));
    const txnId = await outbox.queueEvent("!a", "m.room.message", { body: "secret" });
    expect(outbox.outboxItems.value[0]!.encrypted).toBe(true);
    // Reload: crypto failed to start, and the room's state is not (yet) known to be encrypted.
    outbox.stopOutbox();
    const after = await loadOutbox();
    const broken = fakeClient();
    await after.startOutbox(broken as never, Promise.resolve());
    await settle();
    expect(broken.sendEvent).not.toHaveBeenCalled();
    expect(after.outboxItems.value).toMatchObject([{ txnId, state: "failed" }]);
    expect(markReady).toBeTypeOf("function");
  });

  it("lets a new client flush a room whose send was still in flight when the last one stopped", async () => {
    const before = await loadOutbox();
    const first = fakeClient();
    first.outcomes = ["hang"];
    await before.startOutbox(first as never, Promise.resolve());
    await before.queueEvent("!a", "m.room.message", { body: "stuck" });
    await settle();
    before.stopOutbox();
    const second = fakeClient();
    await before.startOutbox(second as never, Promise.resolve());
    await settle();
    expect(second.sent.map((s) => s.body)).toEqual(["stuck"]);
  });

  it("does not go on after a rate-limit pause once the outbox was stopped", async () => {
    const outbox = await loadOutbox();
    const first = fakeClient();
    first.outcomes = [{ retryAfterMs: 30 }];
    await outbox.startOutbox(first as never, Promise.resolve());
    await outbox.queueEvent("!a", "m.room.message", { body: "limited" });
    await settle();
    outbox.stopOutbox();
    const second = fakeClient();
    await outbox.startOutbox(second as never, new Promise(() => undefined)); // not ready yet
    await new Promise((resolve) => setTimeout(resolve, 80));
    await settle();
    expect(second.sendEvent).not.toHaveBeenCalled();
    expect(second.resendEvent).not.toHaveBeenCalled();
  });

  it("stops waiting for an echo the SDK is sending that never settles, and tries again later", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const outbox = await loadOutbox();
      const client = fakeClient();
      client.outcomes = ["hang"];
      await outbox.startOutbox(client as never, Promise.resolve());
      const txnId = await outbox.queueEvent("!a", "m.room.message", { body: "slow" });
      await vi.advanceTimersByTimeAsync(10);
      outbox.stopOutbox(); // a reload: the SDK's echo is still "sending"
      const after = await loadOutbox();
      await after.startOutbox(client as never, Promise.resolve());
      // IndexedDB (fake-indexeddb) completes on setImmediate, which stays real.
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(after.outboxItems.value).toMatchObject([{ txnId, state: "sending" }]);
      await vi.advanceTimersByTimeAsync(60_500);
      expect(after.outboxItems.value).toMatchObject([{ txnId, state: "queued" }]);
    } finally {
      vi.useRealTimers();
    }
  });
});
