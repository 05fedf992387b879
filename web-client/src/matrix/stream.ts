/**
 * One WebSocket of the server's sync stream (docs/websocket-stream.md), opened with
 * one (access token, filter, set_presence, since): its sync frames, waiting for the
 * SDK's next /sync request, its heartbeat, and the watchdog that gives up on a
 * connection that went silent.
 */

export type Frame =
  | { type: "hello"; heartbeat_interval_ms: number; heartbeat_timeout_ms: number }
  | { type: "sync"; body: { next_batch: string } & Record<string, unknown> }
  | { type: "pong" | "ok"; id?: string | number }
  | { type: "error"; id?: string | number; errcode: string; error: string };

export interface Waiter {
  resolve(body: Record<string, unknown>): void;
  /** The socket failed: the request goes to the network instead. */
  fail(reason: string): void;
}

/** Frames kept for a client that does not ask for them; beyond that the socket is closed. */
export const MAX_BUFFERED_FRAMES = 50;
/** A socket nobody has asked anything of for this long is closed (the SDK stopped syncing). */
export const IDLE_CLOSE_MS = 120_000;

export class Stream {
  readonly socket: WebSocket;
  /** The since the SDK must ask for next to continue this socket's sequence. */
  expectedSince: string;
  readonly frames: Record<string, unknown>[] = [];
  waiter: Waiter | null = null;
  closed = false;
  gotFrame = false;
  /** The last next_batch acknowledged (a quiet stream's repeated since is not acked again). */
  lastAcked = "";
  /** The server's last error frame without id: the reason for its close. */
  lastError = "";
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private watchdog: ReturnType<typeof setTimeout> | undefined;
  private idle: ReturnType<typeof setTimeout> | undefined;
  private silenceMs = 0;
  private nextId = 1;

  constructor(
    readonly key: string,
    url: string,
    since: string,
    WebSocketImpl: typeof WebSocket,
    private readonly takeActivity: () => boolean,
    private readonly onClosed: (stream: Stream, code: number, reason: string) => void,
  ) {
    this.expectedSince = since;
    this.socket = new WebSocketImpl(url);
    this.socket.onmessage = (message) => this.onMessage(message.data);
    this.socket.onclose = (event) => this.finish(event.code, event.reason || "closed");
    this.socket.onerror = () => this.finish(1006, "socket error");
  }

  send(frame: Record<string, unknown>): void {
    if (this.closed || this.socket.readyState !== 1) return;
    this.socket.send(JSON.stringify({ id: this.nextId++, ...frame }));
  }

  close(): void {
    if (this.closed) return;
    try {
      this.socket.close(1000);
    } catch {
      // already closing
    }
    this.finish(1000, this.lastError || "closed by the client");
  }

  /** Gives up on this socket: the waiting request goes to the network, the next one reopens. */
  abandon(reason: string): void {
    this.lastError = reason;
    this.close();
  }

  /** The SDK is waiting for the next frame (a request came): the socket is in use. */
  wait(waiter: Waiter): void {
    clearTimeout(this.idle);
    this.waiter = waiter;
  }

  /** The SDK has its answer: if it does not ask again for IDLE_CLOSE_MS, it stopped syncing. */
  answered(): void {
    clearTimeout(this.idle);
    if (!this.closed) this.idle = setTimeout(() => this.abandon(`no sync request for ${IDLE_CLOSE_MS / 1000} s`), IDLE_CLOSE_MS);
  }

  private onMessage(data: unknown): void {
    let frame: Frame;
    try {
      frame = JSON.parse(String(data)) as Frame;
    } catch {
      return;
    }
    if (frame.type === "hello") {
      // The stream's rule: only what the client sends keeps it alive, so ping on
      // schedule even while frames arrive; each ping is answered by a pong.
      const interval = Math.max(1000, frame.heartbeat_interval_ms || 30_000);
      this.heartbeat = setInterval(() => this.send({ type: "ping", active: this.takeActivity() }), interval);
      // Silence for two heartbeats (a pong missed) means the connection is gone, even
      // if the browser has not noticed: waiting requests then go to the network.
      this.silenceMs = Math.min(2 * interval, frame.heartbeat_timeout_ms || Infinity);
    }
    this.heard();
    if (frame.type === "sync" && frame.body && typeof frame.body.next_batch === "string") {
      this.gotFrame = true;
      if (this.waiter) {
        const waiter = this.waiter;
        this.waiter = null;
        this.expectedSince = frame.body.next_batch;
        waiter.resolve(frame.body);
      } else if (this.frames.length >= MAX_BUFFERED_FRAMES) {
        this.abandon(`${MAX_BUFFERED_FRAMES} sync frames not asked for`);
      } else {
        this.frames.push(frame.body);
      }
    } else if (frame.type === "error" && frame.id === undefined) {
      // The server's reason for the close that follows (M_UNKNOWN_TOKEN, no heartbeat...).
      this.lastError = `${frame.errcode}: ${frame.error}`;
    }
  }

  /** Something arrived: the connection is alive for another silenceMs. */
  private heard(): void {
    clearTimeout(this.watchdog);
    if (this.silenceMs > 0 && !this.closed) {
      this.watchdog = setTimeout(() => this.abandon(`nothing from the server for ${this.silenceMs / 1000} s`), this.silenceMs);
    }
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.watchdog);
    clearTimeout(this.idle);
    const why = this.lastError || `${code} ${reason}`;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.fail(why);
    }
    this.onClosed(this, code, why);
  }
}
