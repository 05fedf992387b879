import { describe, expect, it, vi } from "vitest";
import { SessionTabLock, type ChannelApi, type LockApi } from "../../src/session/tabLock";

/** The Web Locks API as far as it is used: exclusive locks, ifAvailable, waiting requests in order. */
function fakeLocks(): LockApi {
  const held = new Set<string>();
  const queues = new Map<string, (() => void)[]>();
  const grant = (name: string, callback: (lock: unknown) => Promise<void> | void): Promise<unknown> => {
    held.add(name);
    return Promise.resolve(callback({ name })).finally(() => {
      held.delete(name);
      queues.get(name)?.shift()?.();
    });
  };
  return {
    request(name, options, callback) {
      if (!held.has(name)) return grant(name, callback);
      if (options.ifAvailable) return Promise.resolve(callback(null));
      return new Promise((resolve) => {
        queues.set(name, [...(queues.get(name) ?? []), () => resolve(grant(name, callback))]);
      });
    },
  };
}

/** BroadcastChannels of one origin: what one posts, the others receive. */
function fakeBus() {
  const members = new Set<{ listeners: Set<(event: MessageEvent) => void> }>();
  return (): ChannelApi => {
    const me = { listeners: new Set<(event: MessageEvent) => void>() };
    members.add(me);
    return {
      postMessage: (data) => {
        for (const other of members) if (other !== me) for (const listener of other.listeners) listener({ data } as MessageEvent);
      },
      addEventListener: (_type, listener) => void me.listeners.add(listener),
      removeEventListener: (_type, listener) => void me.listeners.delete(listener),
      close: () => void members.delete(me),
    };
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("one tab per session", () => {
  it("lets the first tab run the session and tells the second one it is open elsewhere", async () => {
    const locks = fakeLocks();
    const bus = fakeBus();
    const first = new SessionTabLock("s", locks, bus);
    const second = new SessionTabLock("s", locks, bus);
    expect(await first.tryAcquire()).toBe(true);
    expect(await second.tryAcquire()).toBe(false);
    expect(await new SessionTabLock("other session", locks, bus).tryAcquire()).toBe(true);
  });

  it("'Use here' asks the running tab to stop, then takes the session over", async () => {
    const locks = fakeLocks();
    const bus = fakeBus();
    const first = new SessionTabLock("s", locks, bus);
    await first.tryAcquire();
    const stopped = vi.fn(() => first.release());
    first.whenTakenOver(stopped);

    const second = new SessionTabLock("s", locks, bus);
    let tookOver = false;
    const taking = second.takeOver().then(() => (tookOver = true));
    await taking;
    expect(stopped).toHaveBeenCalledTimes(1);
    expect(tookOver).toBe(true);
    expect(first.held).toBe(false);
    expect(second.held).toBe(true);
    // and now the first tab is the one that cannot run it
    expect(await new SessionTabLock("s", locks, bus).tryAcquire()).toBe(false);
  });

  it("waits for the running tab to let go", async () => {
    const locks = fakeLocks();
    const bus = fakeBus();
    const first = new SessionTabLock("s", locks, bus);
    await first.tryAcquire();
    let stop!: () => void;
    first.whenTakenOver(() => (stop = () => first.release()));
    const second = new SessionTabLock("s", locks, bus);
    let tookOver = false;
    void second.takeOver().then(() => (tookOver = true));
    await settle();
    expect(tookOver).toBe(false); // still stopping
    stop();
    await settle();
    expect(tookOver).toBe(true);
  });

  it("ignores requests for other sessions", async () => {
    const locks = fakeLocks();
    const bus = fakeBus();
    const mine = new SessionTabLock("s", locks, bus);
    await mine.tryAcquire();
    const stopped = vi.fn();
    mine.whenTakenOver(stopped);
    void new SessionTabLock("other", locks, bus).takeOver();
    await settle();
    expect(stopped).not.toHaveBeenCalled();
  });

  it("runs every tab where the browser has no Web Locks (insecure context)", async () => {
    const bus = fakeBus();
    expect(await new SessionTabLock("s", null, bus).tryAcquire()).toBe(true);
    expect(await new SessionTabLock("s", null, bus).tryAcquire()).toBe(true);
  });
});
