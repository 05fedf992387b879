import { describe, expect, it } from "vitest";
import { ObjectUrlCache } from "../../src/media/objectUrlCache";

describe("ObjectUrlCache bounds", () => {
  const setup = (capacity: number, maxBytes: number) => {
    const revoked: string[] = [];
    const cache = new ObjectUrlCache(capacity, (url) => revoked.push(url), maxBytes);
    const get = (key: string, size: number) =>
      cache.acquire(
        key,
        async () => new Blob([new Uint8Array(size)]),
        () => `blob:${key}`,
      );
    return { cache, revoked, get };
  };

  it("keeps the total size under its byte budget, evicting the least recently used", async () => {
    const { cache, revoked, get } = setup(60, 1000);
    (await get("a", 400)).release();
    (await get("b", 400)).release();
    expect(revoked).toEqual([]);
    (await get("c", 400)).release(); // 1200 bytes: a goes
    expect(revoked).toEqual(["blob:a"]);
    expect(cache.bytes).toBe(800);
    (await get("huge", 5000)).release(); // bigger than the budget: only the newest stays
    expect(cache.size).toBe(1);
    expect(revoked).toEqual(["blob:a", "blob:b", "blob:c"]);
  });

  it("forgets everything on clear, revoking what is in use once it is released", async () => {
    const { cache, revoked, get } = setup(60, 10_000);
    (await get("a", 10)).release();
    const shown = await get("b", 10);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(revoked).toEqual(["blob:a"]);
    shown.release();
    expect(revoked).toEqual(["blob:a", "blob:b"]);
  });

  it("does not keep a file whose download finished after clear", async () => {
    const revoked: string[] = [];
    const cache = new ObjectUrlCache(60, (url) => revoked.push(url), 10_000);
    let finish!: (blob: Blob) => void;
    const pending = cache.acquire("late", () => new Promise<Blob>((resolve) => (finish = resolve)), () => "blob:late");
    cache.clear();
    finish(new Blob(["x"]));
    const held = await pending;
    expect(cache.size).toBe(0);
    held.release();
    expect(revoked).toEqual(["blob:late"]);
  });
});
