import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { h, render } from "preact";
import { MatrixEvent, type MatrixClient } from "matrix-js-sdk";

vi.mock("../../src/offline/outbox", () => ({ queueEvent: vi.fn(async () => "txn") }));

import { encryptAttachment } from "../../src/media/attachmentCrypto";
import { fetchMediaBlob } from "../../src/media/download";
import { uploads } from "../../src/media/send";
import { client, online } from "../../src/state/app";
import { features, NO_FEATURES } from "../../src/state/features";
import { AttachButton } from "../../src/ui/media/AttachButton";
import { MediaBody } from "../../src/ui/media/MediaBody";

const flush = () => new Promise((r) => setTimeout(r, 0));

function fakeClient() {
  const matrix = {
    getAccessToken: () => "secret-token",
    mxcUrlToHttp: (mxc: string, w?: number, h?: number, method?: string, _d?: boolean, _r?: boolean, auth?: boolean) =>
      `https://hs.example/${auth ? "_matrix/client/v1/media" : "_matrix/media/v3"}/${w ? "thumbnail" : "download"}/${mxc.slice(6)}${w ? `?width=${w}&height=${h}&method=${method}` : ""}`,
  };
  client.value = matrix as unknown as MatrixClient;
  return matrix;
}

let root: HTMLElement;
beforeEach(() => {
  root = document.createElement("div");
  document.body.append(root);
  online.value = true;
  uploads.value = [];
  features.value = { ...NO_FEATURES, authenticatedMedia: true };
});
afterEach(() => {
  render(null, root);
  root.remove();
  vi.unstubAllGlobals();
});

describe("fetching media", () => {
  it("uses the authenticated endpoint with the access token", async () => {
    fakeClient();
    const fetchMock = vi.fn(async () => new Response(new Uint8Array([1, 2, 3]), { headers: { "Content-Type": "image/png" } }));
    vi.stubGlobal("fetch", fetchMock);
    const blob = await fetchMediaBlob(client.value!, { mxc: "mxc://hs.example/abc" }, "image/png", { w: 640, h: 640 });
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("https://hs.example/_matrix/client/v1/media/thumbnail/hs.example/abc?width=640&height=640&method=scale");
    expect(init.headers).toEqual({ Authorization: "Bearer secret-token" });
    expect(blob.size).toBe(3);
  });

  it("falls back to the unauthenticated v3 endpoint without sending the token", async () => {
    fakeClient();
    features.value = { ...NO_FEATURES, authenticatedMedia: false };
    const fetchMock = vi.fn(async () => new Response("x"));
    vi.stubGlobal("fetch", fetchMock);
    await fetchMediaBlob(client.value!, { mxc: "mxc://hs.example/abc" });
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("https://hs.example/_matrix/media/v3/download/hs.example/abc");
    expect(init.headers).toEqual({});
  });

  it("decrypts encrypted files (whole file, never a server thumbnail) and refuses tampered ones", async () => {
    fakeClient();
    const { data, file } = await encryptAttachment(new TextEncoder().encode("hello"));
    const encrypted = { ...file, url: "mxc://hs.example/enc" };
    const fetchMock = vi.fn(async () => new Response(data.slice(0)));
    vi.stubGlobal("fetch", fetchMock);
    const blob = await fetchMediaBlob(client.value!, { mxc: encrypted.url, encrypted }, "text/plain", { w: 640, h: 640 });
    expect((fetchMock.mock.calls[0] as unknown as [string])[0]).toContain("/download/");
    expect(await blob.text()).toBe("hello");
    expect(blob.type).toBe("text/plain");

    const tampered = new Uint8Array(data.slice(0));
    tampered[2] = tampered[2]! ^ 1;
    vi.stubGlobal("fetch", vi.fn(async () => new Response(tampered)));
    await expect(fetchMediaBlob(client.value!, { mxc: encrypted.url, encrypted })).rejects.toThrow(/altered or damaged/);
  });

  it("reports HTTP failures with the server's reason", async () => {
    fakeClient();
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify({ errcode: "M_NOT_FOUND", error: "Not found" }), { status: 404 })));
    await expect(fetchMediaBlob(client.value!, { mxc: "mxc://hs.example/gone" })).rejects.toThrow("Could not load the file (HTTP 404: Not found)");
  });
});

describe("MediaBody", () => {
  const event = (content: Record<string, unknown>, type = "m.room.message") =>
    new MatrixEvent({ type, content, event_id: "$e", room_id: "!r", sender: "@a:x", origin_server_ts: 0 });

  it("shows a file as a download card with name and human size", () => {
    fakeClient();
    render(h(MediaBody, { event: event({ msgtype: "m.file", body: "report.pdf", url: "mxc://x/r", info: { mimetype: "application/pdf", size: 1_400_000 } }) }), root);
    expect(root.querySelector(".media-file-name")!.textContent).toBe("report.pdf");
    expect(root.textContent).toContain("1.4 MB");
    const button = root.querySelector("button")!;
    expect(button.textContent).toBe("Download");
    expect(button.getAttribute("aria-label")).toBe("Download report.pdf");
  });

  it("reserves an image's space from info.w/h before it loads", () => {
    fakeClient();
    render(h(MediaBody, { event: event({ msgtype: "m.image", body: "cat.png", url: "mxc://x/c", info: { mimetype: "image/png", w: 1600, h: 800 } }) }), root);
    const button = root.querySelector<HTMLButtonElement>("button.media-image")!;
    expect(button.getAttribute("aria-label")).toBe("Open image cat.png");
    expect(button.style.width).toBe("320px");
    expect(button.style.aspectRatio.replace(/\s/g, "")).toBe("320/160");
  });

  it("labels voice messages and shows their duration", () => {
    fakeClient();
    render(
      h(MediaBody, {
        event: event({ msgtype: "m.audio", body: "Voice message", url: "mxc://x/v", info: { mimetype: "audio/webm", duration: 7000 }, "org.matrix.msc3245.voice": {} }),
      }),
      root,
    );
    expect(root.textContent).toContain("Voice message");
    expect(root.textContent).toContain("0:07");
    expect(root.querySelector("audio")!.getAttribute("aria-label")).toBe("Voice message");
  });

  it("says so when the event has no file", () => {
    fakeClient();
    render(h(MediaBody, { event: event({ msgtype: "m.image", body: "lost.png" }) }), root);
    expect(root.textContent).toContain("lost.png (no file attached)");
  });
});

describe("AttachButton", () => {
  it("holds a file input named Attach file and a voice recorder button", () => {
    fakeClient();
    render(h(AttachButton, { roomId: "!r" }), root);
    const input = root.querySelector<HTMLInputElement>('input[type="file"]')!;
    expect(input.getAttribute("aria-label")).toBe("Attach file");
    expect(input.disabled).toBe(false);
    expect(root.querySelector('button[aria-label="Record voice message"]')).not.toBeNull();
  });

  it("is disabled offline, saying why", async () => {
    fakeClient();
    online.value = false;
    render(h(AttachButton, { roomId: "!r" }), root);
    await flush();
    const input = root.querySelector<HTMLInputElement>('input[type="file"]')!;
    expect(input.disabled).toBe(true);
    expect(input.title).toMatch(/^Offline/);
  });

  it("lists this room's uploads with percent and Cancel, and failures with their reason", async () => {
    fakeClient();
    uploads.value = [
      { id: 1, roomId: "!r", name: "big.mov", loaded: 250, total: 1000, state: "uploading" },
      { id: 2, roomId: "!r", name: "huge.iso", loaded: 0, total: 1, state: "failed", error: "“huge.iso” is too large: this server accepts files up to 50 MB." },
      { id: 3, roomId: "!other", name: "elsewhere.txt", loaded: 0, total: 1, state: "uploading" },
    ];
    render(h(AttachButton, { roomId: "!r" }), root);
    await flush();
    const text = root.textContent!;
    expect(text).toContain("big.mov");
    expect(text).toContain("25%");
    expect(text).toContain("accepts files up to 50 MB");
    expect(text).not.toContain("elsewhere.txt");
    expect(root.querySelector('button[aria-label="Cancel upload of big.mov"]')).not.toBeNull();
    expect(root.querySelector('button[aria-label="Dismiss huge.iso"]')).not.toBeNull();
  });
});
