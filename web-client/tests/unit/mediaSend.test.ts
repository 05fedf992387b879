import { beforeEach, describe, expect, it, vi } from "vitest";
import type { MatrixClient } from "matrix-js-sdk";

const queued: { roomId: string; type: string; content: Record<string, unknown> }[] = [];
vi.mock("../../src/offline/outbox", () => ({
  queueEvent: vi.fn(async (roomId: string, type: string, content: Record<string, unknown>) => {
    queued.push({ roomId, type, content });
    return `txn${queued.length}`;
  }),
}));

import { decryptAttachment, type EncryptedFile } from "../../src/media/attachmentCrypto";
import { cancelUpload, retryUpload, sendFile, sendFiles, uploads } from "../../src/media/send";
import { client, online } from "../../src/state/app";

interface FakeUpload {
  body: Blob;
  opts: { name?: string; type?: string; includeFilename?: boolean; progressHandler?: (p: { loaded: number; total: number }) => void };
  resolve: (uri: string) => void;
  reject: (error: unknown) => void;
  promise: Promise<{ content_uri: string }>;
}

function fakeClient(options: { encrypted?: boolean; limit?: number } = {}) {
  const started: FakeUpload[] = [];
  const cancelled: Promise<unknown>[] = [];
  const matrix = {
    getRoom: () => ({ hasEncryptionStateEvent: () => !!options.encrypted }),
    getCrypto: () => ({ isEncryptionEnabledInRoom: async () => !!options.encrypted }),
    getMediaConfig: async () => ({ "m.upload.size": options.limit ?? 50_000_000 }),
    uploadContent: (body: Blob, opts: FakeUpload["opts"]) => {
      let resolve!: FakeUpload["resolve"];
      let reject!: FakeUpload["reject"];
      const promise = new Promise<{ content_uri: string }>((res, rej) => {
        resolve = (uri) => res({ content_uri: uri });
        reject = rej;
      });
      started.push({ body, opts, resolve, reject, promise });
      return promise;
    },
    cancelUpload: (promise: Promise<unknown>) => {
      cancelled.push(promise);
      started.find((u) => u.promise === promise)?.reject(new DOMException("Aborted", "AbortError"));
      return true;
    },
  };
  client.value = matrix as unknown as MatrixClient;
  return { started, cancelled };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(check()).toBe(true);
};

beforeEach(() => {
  queued.length = 0;
  uploads.value = [];
  online.value = true;
});

describe("sending files", () => {
  it("uploads with progress, then queues an m.file message pointing at it", async () => {
    const { started } = fakeClient();
    const done = sendFile("!room:x", new File(["%PDF-1.4 hello"], "report.pdf", { type: "application/pdf" }));
    await until(() => started.length === 1);
    expect(started[0]!.opts).toMatchObject({ name: "report.pdf", type: "application/pdf" });
    started[0]!.opts.progressHandler!({ loaded: 7, total: 14 });
    expect(uploads.value[0]).toMatchObject({ name: "report.pdf", loaded: 7, total: 14, state: "uploading" });
    expect(queued).toHaveLength(0); // never before the bytes are on the server
    started[0]!.resolve("mxc://x/report");
    await done;
    expect(queued).toEqual([
      {
        roomId: "!room:x",
        type: "m.room.message",
        content: { msgtype: "m.file", body: "report.pdf", filename: "report.pdf", url: "mxc://x/report", info: { mimetype: "application/pdf", size: 14 } },
      },
    ]);
    expect(uploads.value).toEqual([]);
  });

  it("encrypts in encrypted rooms: octet-stream, no file name, `file` instead of `url`", async () => {
    const { started } = fakeClient({ encrypted: true });
    const done = sendFile("!enc:x", new File(["secret bytes"], "secret.txt", { type: "text/plain" }));
    await until(() => started.length === 1);
    expect(started[0]!.opts).toMatchObject({ type: "application/octet-stream", includeFilename: false });
    const ciphertext = await started[0]!.body.arrayBuffer();
    expect(new TextDecoder().decode(ciphertext)).not.toContain("secret");
    started[0]!.resolve("mxc://x/enc");
    await done;
    const content = queued[0]!.content;
    expect(content.url).toBeUndefined();
    const file = content.file as EncryptedFile;
    expect(file.url).toBe("mxc://x/enc");
    expect(new TextDecoder().decode(await decryptAttachment(ciphertext, file))).toBe("secret bytes");
  });

  it("sends several files one after another, in order, even when a later upload is faster", async () => {
    const { started } = fakeClient();
    const done = sendFiles("!room:x", [new File(["a"], "a.bin"), new File(["b"], "b.bin")]);
    await until(() => started.length === 1);
    // The second upload starts only after the first message is queued.
    await new Promise((r) => setTimeout(r, 10));
    expect(started).toHaveLength(1);
    started[0]!.resolve("mxc://x/a");
    await until(() => started.length === 2);
    started[1]!.resolve("mxc://x/b");
    await done;
    expect(queued.map((q) => q.content.url)).toEqual(["mxc://x/a", "mxc://x/b"]);
  });

  it("refuses a file over the server's limit before uploading, saying the limit", async () => {
    const { started } = fakeClient({ limit: 1000 });
    await sendFile("!room:x", new File([new Uint8Array(2000)], "big.bin"));
    expect(started).toHaveLength(0);
    expect(uploads.value[0]).toMatchObject({ state: "failed" });
    expect(uploads.value[0]!.error).toContain("up to 1.0 kB");
    expect(queued).toHaveLength(0);
  });

  it("explains a 413 from the server with the limit from /media/config", async () => {
    const { started } = fakeClient({ limit: 3_000_000 });
    const done = sendFile("!room:x", new File(["x"], "x.bin"));
    await until(() => started.length === 1);
    started[0]!.reject(Object.assign(new Error("too large"), { httpStatus: 413, errcode: "M_TOO_LARGE" }));
    await done;
    expect(uploads.value[0]!.error).toBe("“x.bin” is too large: this server accepts files up to 3.0 MB.");
    expect(uploads.value[0]!.retryable).toBe(false);
  });

  it("keeps a file whose upload lost the connection, and Retry sends it", async () => {
    const { started } = fakeClient();
    const done = sendFile("!room:x", new File(["x"], "x.bin"));
    await until(() => started.length === 1);
    started[0]!.reject(Object.assign(new Error("request failed"), { name: "ConnectionError" }));
    await done;
    expect(uploads.value[0]).toMatchObject({ state: "failed", retryable: true, error: "The connection was lost while sending “x.bin”." });
    retryUpload(uploads.value[0]!.id);
    await until(() => started.length === 2);
    expect(await started[1]!.body.text()).toBe("x");
    started[1]!.resolve("mxc://x/again");
    await until(() => queued.length === 1);
    expect(queued[0]!.content.url).toBe("mxc://x/again");
    await until(() => uploads.value.length === 0);
  });

  it("cancels an upload with the SDK and sends nothing", async () => {
    const { started, cancelled } = fakeClient();
    const done = sendFile("!room:x", new File(["x"], "x.bin"));
    await until(() => started.length === 1);
    cancelUpload(uploads.value[0]!.id);
    await done;
    expect(cancelled).toEqual([started[0]!.promise]);
    expect(uploads.value).toEqual([]);
    expect(queued).toHaveLength(0);
  });

  it("does not try while offline, and says why", async () => {
    const { started } = fakeClient();
    online.value = false;
    await sendFile("!room:x", new File(["x"], "x.bin"));
    expect(started).toHaveLength(0);
    expect(uploads.value[0]!.error).toMatch(/Offline/);
  });
});
