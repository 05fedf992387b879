/**
 * Feeds matrix-js-sdk's own sync loop from the server's WebSocket stream
 * (docs/websocket-stream.md) through createClient's `fetchFn`.
 *
 * The SDK keeps doing what it always does: GET /sync?since=S, process the answer,
 * store it, ask again with the new next_batch.  Incremental /sync requests are
 * answered from the stream's `sync` frames (each frame's body is exactly what /sync
 * would have returned); the initial sync and every other request go to the network.
 * A since the stream did not produce (the SDK restarted, or the socket was replaced)
 * reopens the socket from that since, so nothing is missed or repeated.  When the
 * socket cannot be used, the request goes to the network instead, so the SDK never
 * sees an error the plain /sync would not have given it.  The socket itself is
 * stream.ts.
 */
import { Stream, type Waiter } from "./stream";

export interface StreamFetchOptions {
  /** Whether the server offers the stream right now (features.websocketStream). */
  isOffered: () => boolean;
  /** The network fetch (globalThis.fetch in the app). */
  fetchImpl?: typeof fetch;
  /** The WebSocket class (the browser's in the app, a fake in tests). */
  WebSocketImpl?: typeof WebSocket;
  /** Where the reasons for falling back to /sync are written. */
  log?: (message: string) => void;
}

export interface StreamFetch {
  fetchFn: typeof fetch;
  /** The user did something: the next ping says `active: true` (presence activity). */
  noteActivity(): void;
  /** Closes the socket (sign-out, client stopped). */
  close(): void;
  /** Whether sync data currently comes over the socket (for diagnostics and tests). */
  readonly streaming: boolean;
}

const STREAM_PATH = "/_matrix/client/unstable/dev.homeserver/stream";
const SYNC_PATH = /\/_matrix\/client\/(v3|r0)\/sync$/;
/** Socket failures in a row, while plain /sync works, before the stream is given up for a while. */
const MAX_FAILURES = 3;
const GIVE_UP_MS = 5 * 60_000;
/** A socket that has not produced its first frame by then is given up for this request. */
const FIRST_FRAME_MS = 10_000;

export function createStreamFetch(options: StreamFetchOptions): StreamFetch {
  const fetchImpl = options.fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
  const WebSocketImpl = options.WebSocketImpl ?? globalThis.WebSocket;
  const log = options.log ?? ((message: string) => console.warn(`[stream] ${message}`));
  let stream: Stream | null = null;
  let active = false;
  let failures = 0;
  let givenUpUntil = 0;
  let stopped = false;

  const takeActivity = () => {
    const was = active;
    active = false;
    return was;
  };

  const onClosed = (closing: Stream, code: number, why: string) => {
    if (stream === closing) stream = null;
    if (code !== 1000) log(`stream closed (${why}); next sync reopens it or uses /sync`);
  };

  function open(key: string, url: URL, params: URLSearchParams, token: string): Stream {
    const wsUrl = new URL(STREAM_PATH, url);
    wsUrl.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    for (const name of ["since", "filter", "set_presence"]) {
      const value = params.get(name);
      if (value !== null) wsUrl.searchParams.set(name, value);
    }
    wsUrl.searchParams.set("access_token", token);
    return new Stream(key, wsUrl.toString(), params.get("since")!, WebSocketImpl, takeActivity, onClosed);
  }

  /** The next frame continuing `since`, or null after `timeoutMs` of silence. */
  function nextFrame(current: Stream, timeoutMs: number, signal?: AbortSignal | null): Promise<Record<string, unknown> | null> {
    const queued = current.frames.shift();
    if (queued) {
      current.expectedSince = queued.next_batch as string;
      current.answered();
      return Promise.resolve(queued);
    }
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (current.waiter === waiter) current.waiter = null;
        current.answered();
      };
      const onAbort = () => {
        settle();
        reject(signal?.reason ?? new DOMException("The sync was aborted", "AbortError"));
      };
      const waiter: Waiter = {
        resolve: (body) => (settle(), resolve(body)),
        fail: (reason) => (settle(), reject(new Error(reason))),
      };
      current.wait(waiter);
      // A fresh socket always sends a first frame at once; an open one only on news,
      // so a quiet room answers like /sync's long-poll timeout: nothing new.
      if (current.gotFrame) timer = setTimeout(() => (settle(), resolve(null)), timeoutMs);
      else timer = setTimeout(() => current.abandon(`no first frame within ${FIRST_FRAME_MS / 1000} s`), FIRST_FRAME_MS);
      signal?.addEventListener("abort", onAbort);
    });
  }

  async function syncFromStream(url: URL, init: RequestInit | undefined, token: string): Promise<Response | null> {
    const params = url.searchParams;
    const since = params.get("since")!;
    // A new access token (or filter, or presence) needs a socket of its own.
    const key = `${token}|${params.get("filter") ?? ""}|${params.get("set_presence") ?? ""}`;
    let current = stream;
    if (current && !current.closed && current.key === key && current.expectedSince === since) {
      // The SDK asks for what follows `since`: it has processed and stored the frame
      // that ended there, so its to-device messages may go.
      if (current.gotFrame && current.lastAcked !== since) {
        current.lastAcked = since;
        current.send({ type: "ack", next_batch: since });
      }
    } else {
      current?.close();
      current = stream = open(key, url, params, token);
    }
    const timeoutMs = Number(params.get("timeout") ?? "30000");
    let body: Record<string, unknown> | null;
    try {
      body = await nextFrame(current, Number.isFinite(timeoutMs) ? timeoutMs : 30000, init?.signal);
    } catch (error) {
      if ((error as Error)?.name === "AbortError") throw error;
      // The socket failed: this request goes to the network.  It counts against the
      // stream only if the network answers (otherwise we are simply offline).
      const response = await fetchImpl(url.toString(), init);
      if (response.ok && !current.gotFrame && ++failures >= MAX_FAILURES) {
        givenUpUntil = Date.now() + GIVE_UP_MS;
        failures = 0;
        log(`the stream failed ${MAX_FAILURES} times while /sync works (${(error as Error).message}); using /sync for ${GIVE_UP_MS / 60000} minutes`);
      }
      return response;
    }
    failures = 0;
    return new Response(JSON.stringify(body ?? { next_batch: since }), {
      status: 200,
      headers: { "Content-Type": "application/json" },
    });
  }

  const fetchFn: typeof fetch = async (input, init) => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url, globalThis.location?.href);
    const token = bearerToken(init?.headers);
    const method = (init?.method ?? "GET").toUpperCase();
    const isSync = method === "GET" && SYNC_PATH.test(url.pathname);
    if (!stopped && isSync && url.searchParams.has("since") && token && WebSocketImpl && Date.now() >= givenUpUntil && options.isOffered()) {
      return (await syncFromStream(url, init, token))!;
    }
    if (isSync && stream) {
      // The sync goes to the network now (the stream is no longer offered or was given
      // up): a socket left open would only pile up frames nobody reads.
      stream.close();
      stream = null;
    }
    return fetchImpl(input, init);
  };

  return {
    fetchFn,
    noteActivity: () => void (active = true),
    close: () => {
      stopped = true;
      stream?.close();
      stream = null;
    },
    get streaming() {
      return !!stream && !stream.closed && stream.gotFrame;
    },
  };
}

function bearerToken(headers: HeadersInit | undefined): string | null {
  if (!headers) return null;
  let value: string | null | undefined;
  if (headers instanceof Headers) value = headers.get("Authorization");
  else if (Array.isArray(headers)) value = headers.find(([name]) => name.toLowerCase() === "authorization")?.[1];
  else value = Object.entries(headers).find(([name]) => name.toLowerCase() === "authorization")?.[1];
  const match = value?.match(/^Bearer (.+)$/);
  return match ? match[1] : null;
}
