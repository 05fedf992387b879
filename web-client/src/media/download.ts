/**
 * Fetching media with the access token (authenticated media, spec v1.11:
 * client-server-api/_index.md#content-repository) and decrypting encrypted
 * attachments, handing the UI blob: URLs from a shared LRU.
 */
import type { MatrixClient } from "matrix-js-sdk";
import { features } from "../state/features";
import { decryptAttachment } from "./attachmentCrypto";
import type { MediaSource } from "./content";
import { ObjectUrlCache } from "./objectUrlCache";

/** At most this many decoded files, and this many bytes, stay in memory as blob: URLs. */
const cache = new ObjectUrlCache(60, (url) => URL.revokeObjectURL(url), 200 * 1024 * 1024);

/** Sign-out: the last account's media leaves memory. */
export function clearMediaCache(): void {
  cache.clear();
}

export interface ThumbnailSize {
  w: number;
  h: number;
}

/** The HTTP URL of a source; a thumbnail when `size` is given and the file is not encrypted. */
export function mediaHttpUrl(matrix: MatrixClient, source: MediaSource, size?: ThumbnailSize): string | null {
  const authenticated = features.value.authenticatedMedia;
  // Encrypted files cannot be thumbnailed by the server: always the whole ciphertext.
  const thumb = size && !source.encrypted ? size : undefined;
  return matrix.mxcUrlToHttp(source.mxc, thumb?.w, thumb?.h, thumb ? "scale" : undefined, false, true, authenticated);
}

/** Downloads (and decrypts) a source as a Blob of the given type. */
export async function fetchMediaBlob(matrix: MatrixClient, source: MediaSource, mimetype?: string, size?: ThumbnailSize, signal?: AbortSignal): Promise<Blob> {
  const url = mediaHttpUrl(matrix, source, size);
  if (!url) throw new Error("This message has no valid media address.");
  const token = matrix.getAccessToken();
  const response = await fetch(url, {
    headers: token && features.value.authenticatedMedia ? { Authorization: `Bearer ${token}` } : {},
    signal,
  });
  if (!response.ok) throw new Error(await describeFailure(response));
  const bytes = await response.arrayBuffer();
  if (source.encrypted) {
    const plain = await decryptAttachment(bytes, source.encrypted);
    // Sniffing is off on our server (nosniff); the declared type lets the browser play/show it.
    return new Blob([plain], { type: safeMimetype(mimetype) });
  }
  return new Blob([bytes], { type: response.headers.get("Content-Type") ?? safeMimetype(mimetype) });
}

/** A blob: URL for the source, shared through the LRU; call `release` when no longer shown. */
export function acquireMediaUrl(matrix: MatrixClient, source: MediaSource, mimetype?: string, size?: ThumbnailSize): Promise<{ url: string; release: () => void }> {
  const key = `${source.mxc}|${size ? `${size.w}x${size.h}` : "full"}`;
  return cache.acquire(key, () => fetchMediaBlob(matrix, source, mimetype, size));
}

/** Saves the file under its own name (an <a download> on a blob: URL). */
export async function downloadToDisk(matrix: MatrixClient, source: MediaSource, name: string, mimetype?: string): Promise<void> {
  const held = await acquireMediaUrl(matrix, source, mimetype);
  try {
    const link = document.createElement("a");
    link.href = held.url;
    link.download = name;
    link.rel = "noopener";
    document.body.append(link);
    link.click();
    link.remove();
  } finally {
    // The download has its own copy once started; keep the cached URL a moment for the browser.
    setTimeout(held.release, 1000);
  }
}

/**
 * Only types a browser renders as passive media keep their type on a decrypted blob;
 * anything else (HTML, SVG with scripts) becomes an opaque download.
 */
export function safeMimetype(mimetype: string | undefined): string {
  if (!mimetype) return "application/octet-stream";
  const type = mimetype.toLowerCase().split(";")[0]!.trim();
  if (/^(image\/(png|jpeg|gif|webp|avif|bmp)|audio\/[\w.+-]+|video\/[\w.+-]+|text\/plain|application\/pdf)$/.test(type)) return mimetype;
  return "application/octet-stream";
}

async function describeFailure(response: Response): Promise<string> {
  let detail = "";
  try {
    const body = (await response.json()) as { error?: string };
    detail = body.error ? `: ${body.error}` : "";
  } catch {
    /* not JSON */
  }
  return `Could not load the file (HTTP ${response.status}${detail})`;
}
