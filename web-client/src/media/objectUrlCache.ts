/**
 * A small LRU of blob: URLs for media already downloaded (and decrypted), so
 * scrolling back and forth or re-rendering a message does not fetch it again.
 * Entries in use by a mounted component are never revoked; an entry is revoked when
 * it is both evicted and released, so a URL lives exactly as long as someone needs it.
 * The cache keeps at most `capacity` files and `maxBytes` bytes (the newest file
 * always stays); clear() empties it (sign-out).
 */
interface Entry {
  url: string;
  users: number;
  evicted: boolean;
  bytes: number;
}

export class ObjectUrlCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  /** Bumped by clear(): what a load begun before it brings is handed out but not kept. */
  private epoch = 0;

  constructor(
    private readonly capacity: number,
    private readonly revoke: (url: string) => void = (url) => URL.revokeObjectURL(url),
    private readonly maxBytes: number = Number.POSITIVE_INFINITY,
  ) {}

  /**
   * The URL for `key`, loading it with `load` when not cached; the caller holds a
   * reference until it calls the returned release function.
   */
  async acquire(key: string, load: () => Promise<Blob>, create: (blob: Blob) => string = (b) => URL.createObjectURL(b)): Promise<{ url: string; release: () => void }> {
    let entry = this.entries.get(key);
    if (!entry) {
      let pending = this.inflight.get(key);
      if (!pending) {
        const epoch = this.epoch;
        pending = load().then((blob) => {
          const loaded: Entry = { url: create(blob), users: 0, evicted: false, bytes: blob.size };
          if (epoch !== this.epoch) {
            // Cleared meanwhile: its waiters get it; the last release revokes it.
            loaded.evicted = true;
          } else {
            this.entries.set(key, loaded);
            this.evictOverflow();
          }
          return loaded;
        });
        this.inflight.set(key, pending);
        pending.then(
          () => this.inflight.delete(key),
          () => this.inflight.delete(key),
        );
      }
      entry = await pending;
    } else {
      // Most recently used goes last in the Map's order.
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    const held = entry;
    held.users++;
    let released = false;
    return {
      url: held.url,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        if (held.evicted && held.users === 0) this.revoke(held.url);
      },
    };
  }

  get size(): number {
    return this.entries.size;
  }

  /** The bytes of the files cached. */
  get bytes(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.bytes;
    return total;
  }

  /** Forgets every file; those in use are revoked when released. */
  clear(): void {
    this.epoch++;
    for (const key of [...this.entries.keys()]) this.evict(key);
  }

  private evict(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.evicted = true;
    this.entries.delete(key);
    if (entry.users === 0) this.revoke(entry.url);
  }

  /** Least recently used first, until both bounds hold. */
  private evictOverflow(): void {
    let count = this.entries.size;
    let bytes = this.bytes;
    for (const [key, entry] of [...this.entries.entries()]) {
      if (count <= 1 || (count <= this.capacity && bytes <= this.maxBytes)) break;
      count--;
      bytes -= entry.bytes;
      this.evict(key);
    }
  }
}
