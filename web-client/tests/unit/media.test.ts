import { describe, expect, it } from "vitest";
import {
  AttachmentIntegrityError,
  decodeBase64,
  decryptAttachment,
  encodeUnpaddedBase64,
  encryptAttachment,
} from "../../src/media/attachmentCrypto";
import { buildMediaContent, msgtypeForFile, readMediaContent } from "../../src/media/content";
import { safeMimetype } from "../../src/media/download";
import { fitWithin, formatDuration, humanSize } from "../../src/media/format";
import { ObjectUrlCache } from "../../src/media/objectUrlCache";
import { pickRecordingType, summariseWaveform } from "../../src/media/voice";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("encrypted attachments", () => {
  it("round-trips through AES-CTR with a v2 EncryptedFile", async () => {
    const plain = bytes("a picture of a cat, honestly");
    const { data, file } = await encryptAttachment(plain);
    expect(new Uint8Array(data)).not.toEqual(plain);
    expect(data.byteLength).toBe(plain.byteLength);
    expect(file.v).toBe("v2");
    expect(file.key).toMatchObject({ alg: "A256CTR", kty: "oct", ext: true, key_ops: ["encrypt", "decrypt"] });
    expect(decodeBase64(file.key.k)).toHaveLength(32);
    const iv = decodeBase64(file.iv);
    expect(iv).toHaveLength(16);
    expect([...iv.slice(8)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]); // spec: the counter half starts at zero
    expect(file.iv).not.toMatch(/=/);
    expect(file.hashes.sha256).not.toMatch(/=/);
    const decrypted = await decryptAttachment(data, file);
    expect(new TextDecoder().decode(decrypted)).toBe("a picture of a cat, honestly");
  });

  it("uses a fresh key and iv for every file", async () => {
    const a = await encryptAttachment(bytes("same"));
    const b = await encryptAttachment(bytes("same"));
    expect(a.file.key.k).not.toBe(b.file.key.k);
    expect(a.file.iv).not.toBe(b.file.iv);
  });

  it("refuses ciphertext whose SHA-256 does not match", async () => {
    const { data, file } = await encryptAttachment(bytes("original"));
    const tampered = new Uint8Array(data.slice(0));
    tampered[0] = tampered[0]! ^ 0xff;
    await expect(decryptAttachment(tampered.buffer, file)).rejects.toBeInstanceOf(AttachmentIntegrityError);
  });

  it("refuses a file whose hash was swapped for another's", async () => {
    const one = await encryptAttachment(bytes("one"));
    const two = await encryptAttachment(bytes("two"));
    await expect(decryptAttachment(one.data, { ...one.file, hashes: two.file.hashes })).rejects.toBeInstanceOf(AttachmentIntegrityError);
    await expect(decryptAttachment(one.data, { ...one.file, hashes: {} as { sha256: string } })).rejects.toBeInstanceOf(AttachmentIntegrityError);
  });

  it("decodes padded, unpadded and URL-safe base64", () => {
    const raw = new Uint8Array([251, 255, 0, 1, 2]);
    const unpadded = encodeUnpaddedBase64(raw);
    expect(unpadded).toBe("+/8AAQI");
    expect([...decodeBase64(unpadded)]).toEqual([...raw]);
    expect([...decodeBase64("+/8AAQI=")]).toEqual([...raw]);
    expect([...decodeBase64("-_8AAQI")]).toEqual([...raw]);
  });
});

describe("formatting", () => {
  it("gives human sizes", () => {
    expect(humanSize(0)).toBe("0 B");
    expect(humanSize(999)).toBe("999 B");
    expect(humanSize(1400)).toBe("1.4 kB");
    expect(humanSize(1_400_000)).toBe("1.4 MB");
    expect(humanSize(52_428_800)).toBe("52 MB");
    expect(humanSize(999_999)).toBe("1.0 MB");
    expect(humanSize(undefined)).toBe("");
  });
  it("gives durations", () => {
    expect(formatDuration(7000)).toBe("0:07");
    expect(formatDuration(754_000)).toBe("12:34");
    expect(formatDuration(3_723_000)).toBe("1:02:03");
    expect(formatDuration(undefined)).toBe("");
  });
  it("fits a picture in a box without upscaling", () => {
    expect(fitWithin(1600, 800, 320)).toEqual({ w: 320, h: 160 });
    expect(fitWithin(100, 400, 320)).toEqual({ w: 80, h: 320 });
    expect(fitWithin(100, 50, 320)).toEqual({ w: 100, h: 50 });
    expect(fitWithin(undefined, 50, 320)).toBeUndefined();
  });
});

describe("media content", () => {
  it("picks the msgtype from the file's type", () => {
    expect(msgtypeForFile("image/png")).toBe("m.image");
    expect(msgtypeForFile("image/svg+xml")).toBe("m.file"); // not previewed inline
    expect(msgtypeForFile("audio/wav")).toBe("m.audio");
    expect(msgtypeForFile("video/mp4")).toBe("m.video");
    expect(msgtypeForFile("application/pdf")).toBe("m.file");
  });

  it("builds an m.image with thumbnail info and reads it back", () => {
    const content = buildMediaContent({
      msgtype: "m.image",
      name: "cat.png",
      mimetype: "image/png",
      size: 123_456,
      w: 1600,
      h: 1200,
      url: "mxc://example.org/full",
      thumbnail: { url: "mxc://example.org/thumb", mimetype: "image/webp", size: 9000, w: 800, h: 600 },
    });
    expect(content).toEqual({
      msgtype: "m.image",
      body: "cat.png",
      filename: "cat.png",
      url: "mxc://example.org/full",
      info: {
        mimetype: "image/png",
        size: 123_456,
        w: 1600,
        h: 1200,
        thumbnail_url: "mxc://example.org/thumb",
        thumbnail_info: { mimetype: "image/webp", size: 9000, w: 800, h: 600 },
      },
    });
    const view = readMediaContent(content)!;
    expect(view).toMatchObject({ msgtype: "m.image", name: "cat.png", w: 1600, h: 1200, size: 123_456, isVoice: false });
    expect(view.source).toEqual({ mxc: "mxc://example.org/full" });
    expect(view.thumbnail).toEqual({ mxc: "mxc://example.org/thumb" });
  });

  it("puts encrypted files under file / thumbnail_file, never url", async () => {
    const { file } = await encryptAttachment(bytes("x"));
    const content = buildMediaContent({
      msgtype: "m.image",
      name: "secret.png",
      mimetype: "image/png",
      size: 1,
      file: { ...file, url: "mxc://example.org/enc" },
      thumbnail: { file: { ...file, url: "mxc://example.org/encthumb" }, mimetype: "image/jpeg", size: 1, w: 1, h: 1 },
    });
    expect(content.url).toBeUndefined();
    expect((content.info as Record<string, unknown>).thumbnail_url).toBeUndefined();
    const view = readMediaContent(content)!;
    expect(view.source?.encrypted?.url).toBe("mxc://example.org/enc");
    expect(view.thumbnail?.encrypted?.url).toBe("mxc://example.org/encthumb");
  });

  it("marks voice messages the MSC3245 way", () => {
    const content = buildMediaContent({
      msgtype: "m.audio",
      name: "Voice message.webm",
      mimetype: "audio/webm",
      size: 2000,
      duration: 4321.4,
      url: "mxc://example.org/voice",
      voice: { waveform: [0, 0.5, 1] },
    });
    expect(content.body).toBe("Voice message");
    expect(content["org.matrix.msc3245.voice"]).toEqual({});
    expect(content["org.matrix.msc1767.audio"]).toEqual({ duration: 4321, waveform: [0, 512, 1024] });
    expect((content.info as Record<string, unknown>).duration).toBe(4321);
    const view = readMediaContent(content)!;
    expect(view.isVoice).toBe(true);
    expect(view.duration).toBe(4321);
    expect(view.waveform).toEqual([0, 0.5, 1]);
  });

  it("reads what other clients send defensively", () => {
    expect(readMediaContent({ msgtype: "m.text", body: "hi" })).toBeNull();
    const odd = readMediaContent({ msgtype: "m.file", body: "report.pdf", url: "https://evil.example/x", info: { size: "big" } })!;
    expect(odd.source).toBeUndefined(); // only mxc:// is fetched
    expect(odd.size).toBeUndefined();
    expect(odd.name).toBe("report.pdf");
  });

  it("keeps only passive types on decrypted blobs", () => {
    expect(safeMimetype("image/png")).toBe("image/png");
    expect(safeMimetype("audio/webm")).toBe("audio/webm");
    expect(safeMimetype("text/html")).toBe("application/octet-stream");
    expect(safeMimetype("image/svg+xml")).toBe("application/octet-stream");
    expect(safeMimetype(undefined)).toBe("application/octet-stream");
  });
});

describe("ObjectUrlCache", () => {
  const setup = (capacity: number) => {
    const revoked: string[] = [];
    let loads = 0;
    let n = 0;
    const cache = new ObjectUrlCache(capacity, (url) => revoked.push(url));
    const get = (key: string) =>
      cache.acquire(
        key,
        async () => (loads++, new Blob([key])),
        () => `blob:${key}#${++n}`,
      );
    return { cache, revoked, get, loads: () => loads };
  };

  it("loads once for concurrent and repeated users", async () => {
    const { get, loads } = setup(2);
    const [a, b] = await Promise.all([get("a"), get("a")]);
    const c = await get("a");
    expect(a.url).toBe(b.url);
    expect(c.url).toBe(a.url);
    expect(loads()).toBe(1);
  });

  it("evicts the least recently used, revoking only what nobody shows", async () => {
    const { cache, get, revoked } = setup(2);
    const a = await get("a");
    (await get("b")).release();
    (await get("a")).release(); // a is now most recent
    (await get("c")).release(); // evicts b (unused): revoked at once
    expect(revoked).toEqual(["blob:b#2"]);
    expect(cache.size).toBe(2);
    (await get("d")).release(); // evicts a, still shown: kept until released
    expect(revoked).toEqual(["blob:b#2"]);
    a.release();
    a.release(); // releasing twice is harmless
    expect(revoked).toEqual(["blob:b#2", "blob:a#1"]);
  });

  it("does not cache failures", async () => {
    const cache = new ObjectUrlCache(2, () => undefined);
    await expect(cache.acquire("x", () => Promise.reject(new Error("404")), () => "u")).rejects.toThrow("404");
    await expect(cache.acquire("x", async () => new Blob(["ok"]), () => "blob:ok")).resolves.toMatchObject({ url: "blob:ok" });
  });
});

describe("voice recording helpers", () => {
  it("prefers Opus in WebM, then Ogg", () => {
    expect(pickRecordingType(() => true)).toBe("audio/webm;codecs=opus");
    expect(pickRecordingType((t) => t.startsWith("audio/ogg"))).toBe("audio/ogg;codecs=opus");
    expect(pickRecordingType(() => false)).toBeUndefined();
  });
  it("reduces loudness samples to normalised bars", () => {
    expect(summariseWaveform([], 10)).toEqual([]);
    expect(summariseWaveform([0.1, 0.2], 10)).toEqual([0.5, 1]);
    const bars = summariseWaveform(Array.from({ length: 100 }, (_, i) => i / 100), 10);
    expect(bars).toHaveLength(10);
    expect(bars[9]).toBe(1);
    expect(bars[0]!).toBeLessThan(bars[5]!);
  });
});
