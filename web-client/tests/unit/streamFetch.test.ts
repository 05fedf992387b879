import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createStreamFetch } from "../../src/matrix/streamFetch";
import { IDLE_CLOSE_MS, MAX_BUFFERED_FRAMES } from "../../src/matrix/stream";

/** A WebSocket the test drives: it records what the client sends and delivers what the test pushes. */
class FakeSocket {
  static instances: FakeSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onmessage: ((message: { data: string }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.instances.push(this);
  }
  get params() {
    return new URL(this.url).searchParams;
  }
  /** Whether the server answers pings (a connection lost silently does not). */
  answering = true;
  send(data: string) {
    const frame = JSON.parse(data);
    this.sent.push(frame);
    if (frame.type === "ping" && this.answering) this.push({ type: "pong", id: frame.id });
  }
  close(code = 1000) {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
  /** The server accepts: hello, then the first sync frame. */
  open(heartbeat = 30000) {
    this.readyState = 1;
    this.push({ type: "hello", heartbeat_interval_ms: heartbeat, heartbeat_timeout_ms: 3 * heartbeat });
  }
  push(frame: Record<string, unknown>) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  sync(nextBatch: string, extra: Record<string, unknown> = {}) {
    this.push({ type: "sync", body: { next_batch: nextBatch, ...extra } });
  }
}

const BASE = "https://hs.example/_matrix/client/v3/sync";
const AUTH = { headers: { Authorization: "Bearer tok" } };

function syncUrl(since: string | null, extra = "") {
  return `${BASE}?filter=7&timeout=30000${since ? `&since=${since}` : ""}${extra}`;
}

describe("streamFetch", () => {
  let network: ReturnType<typeof vi.fn>;
  let offered: boolean;
  let logs: string[];

  beforeEach(() => {
    FakeSocket.instances = [];
    offered = true;
    logs = [];
    network = vi.fn(async (input: RequestInfo | URL) => new Response(JSON.stringify({ next_batch: "net", from: String(input) }), { status: 200 }));
  });
  afterEach(() => vi.useRealTimers());

  function make() {
    return createStreamFetch({
      isOffered: () => offered,
      fetchImpl: network as unknown as typeof fetch,
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
      log: (message) => logs.push(message),
    });
  }

  it("sends the initial sync and other requests to the network", async () => {
    const { fetchFn } = make();
    await fetchFn(syncUrl(null), AUTH);
    await fetchFn("https://hs.example/_matrix/client/v3/rooms/!r/send/m.room.message/t1", { ...AUTH, method: "PUT" });
    expect(network).toHaveBeenCalledTimes(2);
    expect(FakeSocket.instances).toHaveLength(0);
  });

  it("uses /sync when the server does not offer the stream", async () => {
    offered = false;
    const { fetchFn } = make();
    await fetchFn(syncUrl("s1"), AUTH);
    expect(network).toHaveBeenCalledTimes(1);
    expect(FakeSocket.instances).toHaveLength(0);
  });

  it("answers incremental syncs from sync frames, in sequence, and acks what was processed", async () => {
    const { fetchFn } = make();
    const first = fetchFn(syncUrl("s1", "&set_presence=online"), AUTH);
    const socket = FakeSocket.instances[0];
    expect(socket.url.startsWith("wss://hs.example/_matrix/client/unstable/dev.homeserver/stream?")).toBe(true);
    expect(socket.params.get("since")).toBe("s1");
    expect(socket.params.get("filter")).toBe("7");
    expect(socket.params.get("set_presence")).toBe("online");
    expect(socket.params.get("access_token")).toBe("tok");
    socket.open();
    socket.sync("s2", { rooms: { join: { "!a": {} } } });
    const body = await (await first).json();
    expect(body).toEqual({ next_batch: "s2", rooms: { join: { "!a": {} } } });

    // Frames that arrive before the SDK asks again wait for it, in order.
    socket.sync("s3");
    socket.sync("s4");
    expect((await (await fetchFn(syncUrl("s2", "&set_presence=online"), AUTH)).json()).next_batch).toBe("s3");
    expect((await (await fetchFn(syncUrl("s3", "&set_presence=online"), AUTH)).json()).next_batch).toBe("s4");
    expect(socket.sent.filter((f) => f.type === "ack").map((f) => f.next_batch)).toEqual(["s2", "s3"]);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(network).not.toHaveBeenCalled();
  });

  it("reopens the socket from the SDK's since when it does not continue the stream", async () => {
    const { fetchFn } = make();
    const first = fetchFn(syncUrl("s1"), AUTH);
    FakeSocket.instances[0].open();
    FakeSocket.instances[0].sync("s2");
    await first;
    const other = fetchFn(syncUrl("old"), AUTH);
    expect(FakeSocket.instances).toHaveLength(2);
    expect(FakeSocket.instances[0].readyState).toBe(3);
    expect(FakeSocket.instances[1].params.get("since")).toBe("old");
    FakeSocket.instances[1].open();
    FakeSocket.instances[1].sync("s9");
    expect((await (await other).json()).next_batch).toBe("s9");
  });

  it("answers 'nothing new' after the request's timeout on a quiet stream", async () => {
    vi.useFakeTimers();
    const { fetchFn } = make();
    const first = fetchFn(syncUrl("s1"), AUTH);
    FakeSocket.instances[0].open();
    FakeSocket.instances[0].sync("s2");
    await first;
    const quiet = fetchFn(syncUrl("s2"), AUTH);
    await vi.advanceTimersByTimeAsync(30000);
    expect(await (await quiet).json()).toEqual({ next_batch: "s2" });
    // The stream goes on from the same token.
    const next = fetchFn(syncUrl("s2"), AUTH);
    FakeSocket.instances[0].sync("s3");
    expect((await (await next).json()).next_batch).toBe("s3");
    expect(FakeSocket.instances).toHaveLength(1);
    // s2 was asked for twice but is acknowledged once
    expect(FakeSocket.instances[0].sent.filter((f) => f.type === "ack").map((f) => f.next_batch)).toEqual(["s2"]);
  });

  it("pings at the hello's interval, active after user activity", async () => {
    vi.useFakeTimers();
    const stream = make();
    void stream.fetchFn(syncUrl("s1"), AUTH);
    const socket = FakeSocket.instances[0];
    socket.open(5000);
    socket.sync("s2");
    await vi.advanceTimersByTimeAsync(5000);
    stream.noteActivity();
    await vi.advanceTimersByTimeAsync(5000);
    await vi.advanceTimersByTimeAsync(5000);
    expect(socket.sent.filter((f) => f.type === "ping").map((f) => f.active)).toEqual([false, true, false]);
  });

  it("sends a request to the network when its socket closes, and gives the stream up when /sync keeps working", async () => {
    const { fetchFn } = make();
    for (let attempt = 0; attempt < 3; attempt++) {
      const request = fetchFn(syncUrl("s1"), AUTH);
      const socket = FakeSocket.instances[attempt];
      socket.push({ type: "error", errcode: "M_UNKNOWN", error: "broken" });
      socket.close(1011);
      expect((await (await request).json()).next_batch).toBe("net");
    }
    expect(network).toHaveBeenCalledTimes(3);
    expect(logs.some((line) => line.includes("using /sync"))).toBe(true);
    await fetchFn(syncUrl("s1"), AUTH);
    expect(FakeSocket.instances).toHaveLength(3); // no fourth socket: plain /sync now
  });

  it("goes to the network when a new socket says nothing for 10 s", async () => {
    vi.useFakeTimers();
    const { fetchFn } = make();
    const request = fetchFn(syncUrl("s1"), AUTH);
    await vi.advanceTimersByTimeAsync(10_000);
    expect((await (await request).json()).next_batch).toBe("net");
    expect(FakeSocket.instances[0].readyState).toBe(3);
  });

  it("lets the network answer when the token was logged out (4001), so the SDK sees the 401", async () => {
    network.mockResolvedValueOnce(new Response(JSON.stringify({ errcode: "M_UNKNOWN_TOKEN", error: "gone" }), { status: 401 }));
    const { fetchFn } = make();
    const request = fetchFn(syncUrl("s1"), AUTH);
    const socket = FakeSocket.instances[0];
    socket.open();
    socket.sync("s2");
    await request;
    const next = fetchFn(syncUrl("s2"), AUTH);
    socket.push({ type: "error", errcode: "M_UNKNOWN_TOKEN", error: "logged out" });
    socket.close(4001);
    expect((await next).status).toBe(401);
  });

  it("rejects with the abort when the SDK stops syncing, keeping the frame for later", async () => {
    const { fetchFn } = make();
    const first = fetchFn(syncUrl("s1"), AUTH);
    FakeSocket.instances[0].open();
    FakeSocket.instances[0].sync("s2");
    await first;
    const controller = new AbortController();
    const aborted = fetchFn(syncUrl("s2"), { ...AUTH, signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toBeTruthy();
    FakeSocket.instances[0].sync("s3");
    expect((await (await fetchFn(syncUrl("s2"), AUTH)).json()).next_batch).toBe("s3");
  });

  it("gives up a connection that went silent (no pong for two heartbeats): the waiting sync goes to the network", async () => {
    vi.useFakeTimers();
    const { fetchFn } = make();
    const first = fetchFn(syncUrl("s1"), AUTH);
    const socket = FakeSocket.instances[0];
    socket.open(5000);
    socket.sync("s2");
    await first;
    const waiting = fetchFn(syncUrl("s2"), { ...AUTH });
    await vi.advanceTimersByTimeAsync(12_000); // pings answered: still streaming
    expect(network).not.toHaveBeenCalled();
    socket.answering = false; // the connection is gone, the browser has not noticed
    network.mockRejectedValueOnce(new TypeError("Failed to fetch"));
    const outcome = waiting.then(
      () => "answered",
      () => "failed",
    );
    await vi.advanceTimersByTimeAsync(7000);
    expect(network).not.toHaveBeenCalled(); // the last pong was 9 s ago
    await vi.advanceTimersByTimeAsync(2000);
    // Offline: the network fails too, so the SDK sees the outage (its sync state changes).
    expect(await outcome).toBe("failed");
    expect(network).toHaveBeenCalledTimes(1);
    expect(socket.readyState).toBe(3);
  });

  it("opens a new socket when the access token changes", async () => {
    const { fetchFn } = make();
    const first = fetchFn(syncUrl("s1"), AUTH);
    FakeSocket.instances[0].open();
    FakeSocket.instances[0].sync("s2");
    await first;
    void fetchFn(syncUrl("s2"), { headers: { Authorization: "Bearer newtok" } });
    expect(FakeSocket.instances).toHaveLength(2);
    expect(FakeSocket.instances[0].readyState).toBe(3);
    expect(FakeSocket.instances[1].params.get("access_token")).toBe("newtok");
  });

  it("closes a socket whose frames nobody asks for", async () => {
    const { fetchFn } = make();
    const first = fetchFn(syncUrl("s1"), AUTH);
    const socket = FakeSocket.instances[0];
    socket.open();
    socket.sync("s2");
    await first;
    for (let i = 0; i <= MAX_BUFFERED_FRAMES; i++) socket.sync(`t${i}`);
    expect(socket.readyState).toBe(3);
  });

  it("closes the socket when the SDK stops asking", async () => {
    vi.useFakeTimers();
    const { fetchFn } = make();
    const first = fetchFn(syncUrl("s1"), AUTH);
    const socket = FakeSocket.instances[0];
    socket.open();
    socket.sync("s2");
    await first;
    await vi.advanceTimersByTimeAsync(IDLE_CLOSE_MS + 1000);
    expect(socket.readyState).toBe(3);
  });

  it("closes the socket once the stream is no longer offered", async () => {
    const { fetchFn } = make();
    const first = fetchFn(syncUrl("s1"), AUTH);
    const socket = FakeSocket.instances[0];
    socket.open();
    socket.sync("s2");
    await first;
    offered = false;
    await fetchFn(syncUrl("s2"), AUTH);
    expect(network).toHaveBeenCalledTimes(1);
    expect(socket.readyState).toBe(3);
  });
});
