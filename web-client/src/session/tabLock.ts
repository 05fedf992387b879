/**
 * One tab per session: two tabs running the same session would both write its crypto
 * store (and both sync).  The running tab holds a Web Lock named after the session; a
 * second tab sees it held and offers "Use here", which asks the holder, over a
 * BroadcastChannel, to stop and let go, then waits for the lock.
 * Without the Web Locks API (an insecure context) every tab simply runs.
 */

/** What this module needs of navigator.locks (a fake one in the unit tests). */
export interface LockApi {
  request(name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => Promise<void> | void): Promise<unknown>;
}

/** What it needs of a BroadcastChannel. */
export interface ChannelApi {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  removeEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  close(): void;
}

export const TAB_CHANNEL_NAME = "hs-session-tabs";

interface TakeOverMessage {
  type: "take-over";
  lock: string;
}

export class SessionTabLock {
  private releaseHeld: (() => void) | null = null;
  private channel: ChannelApi | null = null;
  private onTakeOver: (() => void) | null = null;

  constructor(
    readonly name: string,
    private readonly locks: LockApi | null = globalThis.navigator?.locks ?? null,
    private readonly openChannel: () => ChannelApi | null = () => (typeof BroadcastChannel === "function" ? new BroadcastChannel(TAB_CHANNEL_NAME) : null),
  ) {}

  get held(): boolean {
    return this.releaseHeld !== null;
  }

  /** Takes the lock if no other tab holds it; false when one does. */
  tryAcquire(): Promise<boolean> {
    return this.acquire(true);
  }

  /** Asks the tab that holds the lock to let go, and resolves once this tab holds it. */
  async takeOver(): Promise<void> {
    const channel = this.openChannel();
    channel?.postMessage({ type: "take-over", lock: this.name } satisfies TakeOverMessage);
    channel?.close();
    await this.acquire(false);
  }

  /** While held: `stop` runs when another tab asks for the session (then call release). */
  whenTakenOver(stop: () => void): void {
    this.onTakeOver = stop;
  }

  release(): void {
    this.releaseHeld?.();
    this.releaseHeld = null;
    this.channel?.removeEventListener("message", this.onMessage);
    this.channel?.close();
    this.channel = null;
    this.onTakeOver = null;
  }

  private acquire(ifAvailable: boolean): Promise<boolean> {
    if (!this.locks) {
      this.listen();
      this.releaseHeld = () => undefined;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve, reject) => {
      this.locks!.request(this.name, { ifAvailable }, (lock) => {
        if (!lock) return resolve(false);
        this.listen();
        // The lock is held until the promise returned here settles.
        return new Promise<void>((let_go) => {
          this.releaseHeld = let_go;
          resolve(true);
        });
      }).catch(reject);
    });
  }

  private listen(): void {
    this.channel = this.openChannel();
    this.channel?.addEventListener("message", this.onMessage);
  }

  private readonly onMessage = (event: MessageEvent) => {
    const message = event.data as Partial<TakeOverMessage> | null;
    if (message?.type === "take-over" && message.lock === this.name && this.held) this.onTakeOver?.();
  };
}

/** The lock of one session (user and device). */
export function sessionLockName(userId: string, deviceId: string): string {
  return `hs-session:${userId}/${deviceId}`;
}
