/**
 * Sending files: read what the file is, encrypt it in encrypted rooms, upload it (and
 * its thumbnail) with progress, and only then queue the m.room.message through the
 * outbox, so a message never points at bytes the server does not have.
 * spec: client-server-api/_index.md#content-repository, #sending-encrypted-attachments
 */
import { signal } from "@preact/signals";
import type { MatrixClient } from "matrix-js-sdk";
import { queueEvent } from "../offline/outbox";
import { client, online } from "../state/app";
import { features } from "../state/features";
import { encryptAttachment, type EncryptedFile } from "./attachmentCrypto";
import { buildMediaContent, msgtypeForFile, type OutgoingMedia } from "./content";
import { readImage, readPlayable, type Thumbnail } from "./fileInfo";
import { humanSize } from "./format";

export interface UploadJob {
  id: number;
  roomId: string;
  name: string;
  /** Bytes of the file itself sent so far, and its size. */
  loaded: number;
  total: number;
  state: "waiting" | "preparing" | "uploading" | "sending" | "failed";
  error?: string;
  /** A failed job that trying again could fix (not one that is too large). */
  retryable?: boolean;
}

/** Why attaching is disabled while offline (a title on the controls). */
export const OFFLINE_ATTACH_TITLE = "Offline: files can be attached once the connection returns";

/** Uploads in progress or failed, for the progress bars in the composer.  Written here only. */
export const uploads = signal<UploadJob[]>([]);

export interface VoiceDetails {
  duration: number;
  waveform?: number[];
}

let nextId = 1;
const cancellers = new Map<number, () => void>();
/** The files of failed jobs, kept for Retry until dismissed. */
const failedFiles = new Map<number, { file: File; voice?: VoiceDetails }>();
/** Per room, the end of the chain of sends, so several files go one after another, in order. */
const roomChains = new Map<string, Promise<void>>();
/** `m.upload.size` per signed-in client, asked once. */
const uploadLimits = new WeakMap<MatrixClient, Promise<number | undefined>>();

/** Sends files one after another; resolves when all were tried (failures stay listed in `uploads`). */
export function sendFiles(roomId: string, files: Iterable<File>): Promise<void> {
  let last: Promise<void> = Promise.resolve();
  for (const file of files) last = sendFile(roomId, file);
  return last;
}

export function sendVoiceMessage(roomId: string, recording: Blob, voice: VoiceDetails): Promise<void> {
  const extension = recording.type.includes("ogg") ? "ogg" : recording.type.includes("mp4") ? "m4a" : "webm";
  const file = new File([recording], `Voice message ${new Date().toISOString().slice(0, 19).replace("T", " ")}.${extension}`, {
    type: recording.type || "audio/webm",
  });
  return sendFile(roomId, file, voice);
}

export function sendFile(roomId: string, file: File, voice?: VoiceDetails): Promise<void> {
  const job: UploadJob = { id: nextId++, roomId, name: file.name || "file", loaded: 0, total: file.size, state: "waiting" };
  uploads.value = [...uploads.value, job];
  const previous = roomChains.get(roomId) ?? Promise.resolve();
  const run = previous.then(() => runJob(job.id, roomId, file, voice));
  const tail = run.catch(() => undefined);
  roomChains.set(roomId, tail);
  void tail.then(() => {
    if (roomChains.get(roomId) === tail) roomChains.delete(roomId);
  });
  return tail;
}

export function cancelUpload(id: number): void {
  const cancel = cancellers.get(id);
  if (cancel) cancel();
  else removeJob(id);
}

export function dismissUpload(id: number): void {
  failedFiles.delete(id);
  removeJob(id);
}

export function retryUpload(id: number): void {
  const failed = failedFiles.get(id);
  const job = findJob(id);
  dismissUpload(id);
  if (failed && job) void sendFile(job.roomId, failed.file, failed.voice);
}

class Cancelled extends Error {}
class TooLarge extends Error {}

async function runJob(id: number, roomId: string, file: File, voice?: VoiceDetails): Promise<void> {
  if (!findJob(id)) return; // cancelled while waiting its turn
  let cancelled = false;
  let current: Promise<unknown> | undefined;
  const matrix = client.value;
  cancellers.set(id, () => {
    cancelled = true;
    if (current && matrix) matrix.cancelUpload(current as Promise<{ content_uri: string }>);
    removeJob(id);
  });
  const check = () => {
    if (cancelled) throw new Cancelled();
  };
  try {
    if (!matrix) throw new Error("Not signed in.");
    if (!online.value) throw new Error("Offline: files can be sent once the connection returns.");
    updateJob(id, { state: "preparing" });
    const limit = await getUploadLimit(matrix);
    if (limit !== undefined && file.size > limit) throw new TooLarge(tooLarge(file.name, limit));
    const encrypted = await isRoomEncrypted(matrix, roomId);
    const mimetype = file.type || "application/octet-stream";
    const media: OutgoingMedia = { msgtype: voice ? "m.audio" : msgtypeForFile(mimetype), name: file.name || "file", mimetype, size: file.size };
    let thumbnail: Thumbnail | undefined;
    if (voice) {
      media.duration = voice.duration;
      media.voice = { waveform: voice.waveform };
    } else if (media.msgtype === "m.image") {
      const image = await readImage(file);
      if (image) {
        media.w = image.w;
        media.h = image.h;
        thumbnail = image.thumbnail;
      } else {
        media.msgtype = "m.file"; // undecodable here, so others could not preview it either
      }
    } else if (media.msgtype === "m.audio" || media.msgtype === "m.video") {
      const playable = await readPlayable(file, media.msgtype === "m.audio" ? "audio" : "video");
      media.duration = playable.duration;
      media.w = playable.w;
      media.h = playable.h;
      thumbnail = playable.poster;
    }
    check();

    if (thumbnail) {
      const stored = await upload(matrix, thumbnail.blob, encrypted, "thumbnail", undefined, (p) => (current = p));
      media.thumbnail = { ...stored, mimetype: thumbnail.blob.type, size: thumbnail.blob.size, w: thumbnail.w, h: thumbnail.h };
      check();
    }
    updateJob(id, { state: "uploading" });
    const stored = await upload(matrix, file, encrypted, media.name, (loaded) => updateJob(id, { loaded }), (p) => (current = p));
    check();
    Object.assign(media, stored);
    updateJob(id, { state: "sending", loaded: file.size });
    cancellers.delete(id); // from here on the outbox owns it
    await queueEvent(roomId, "m.room.message", buildMediaContent(media));
    removeJob(id);
  } catch (error) {
    cancellers.delete(id);
    if (cancelled || error instanceof Cancelled || (error instanceof Error && error.name === "AbortError")) {
      removeJob(id);
      return;
    }
    const tooBig = error instanceof TooLarge || isTooLarge(error);
    failedFiles.set(id, { file, voice });
    updateJob(id, { state: "failed", error: await describeError(matrix, file.name, error), retryable: !tooBig });
    throw error;
  }
}

async function upload(
  matrix: MatrixClient,
  data: Blob,
  encrypted: boolean,
  name: string,
  onProgress: ((loaded: number) => void) | undefined,
  onStarted: (promise: Promise<unknown>) => void,
): Promise<{ url?: string; file?: EncryptedFile }> {
  if (encrypted) {
    const { data: ciphertext, file } = await encryptAttachment(await data.arrayBuffer());
    // The name and type would leak what the file is: neither is sent.
    const promise = matrix.uploadContent(new Blob([ciphertext]), {
      type: "application/octet-stream",
      includeFilename: false,
      progressHandler: onProgress && (({ loaded, total }) => onProgress(Math.round((loaded / (total || 1)) * data.size))),
    });
    onStarted(promise);
    const { content_uri } = await promise;
    return { file: { ...file, url: content_uri } };
  }
  const promise = matrix.uploadContent(data, {
    name,
    type: data.type || "application/octet-stream",
    progressHandler: onProgress && (({ loaded }) => onProgress(loaded)),
  });
  onStarted(promise);
  const { content_uri } = await promise;
  return { url: content_uri };
}

async function isRoomEncrypted(matrix: MatrixClient, roomId: string): Promise<boolean> {
  if (matrix.getRoom(roomId)?.hasEncryptionStateEvent()) return true;
  return (await matrix.getCrypto()?.isEncryptionEnabledInRoom(roomId)) ?? false;
}

/** `m.upload.size` from /media/config (undefined when the server does not say). */
function getUploadLimit(matrix: MatrixClient): Promise<number | undefined> {
  let limit = uploadLimits.get(matrix);
  if (!limit) {
    limit = matrix
      .getMediaConfig(features.value.authenticatedMedia)
      .then((config) => config["m.upload.size"])
      .catch(() => {
        uploadLimits.delete(matrix); // ask again next time
        return undefined;
      });
    uploadLimits.set(matrix, limit);
  }
  return limit;
}

async function describeError(matrix: MatrixClient | null, name: string, error: unknown): Promise<string> {
  const e = error as { name?: string; httpStatus?: number; errcode?: string; message?: string; data?: { error?: string } };
  if (isTooLarge(error)) {
    const limit = matrix ? await getUploadLimit(matrix) : undefined;
    return limit !== undefined ? tooLarge(name, limit) : `“${name}” is larger than the server accepts.`;
  }
  if (e?.httpStatus === 429) return `The server is busy; try “${name}” again in a moment.`;
  if (e?.name === "ConnectionError" || e?.message === "Timeout") return `The connection was lost while sending “${name}”.`;
  return e?.data?.error ?? e?.message ?? String(error);
}

function isTooLarge(error: unknown): boolean {
  const e = error as { httpStatus?: number; errcode?: string } | undefined;
  return e?.httpStatus === 413 || e?.errcode === "M_TOO_LARGE";
}

function tooLarge(name: string, limit: number): string {
  return `“${name}” is too large: this server accepts files up to ${humanSize(limit)}.`;
}

function findJob(id: number): UploadJob | undefined {
  return uploads.value.find((job) => job.id === id);
}
function updateJob(id: number, change: Partial<UploadJob>): void {
  uploads.value = uploads.value.map((job) => (job.id === id ? { ...job, ...change } : job));
}
function removeJob(id: number): void {
  failedFiles.delete(id);
  uploads.value = uploads.value.filter((job) => job.id !== id);
}
