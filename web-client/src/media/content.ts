/**
 * What an m.room.message media event says, read defensively (content arrives from
 * other clients), and how a file we send becomes one.
 * spec: client-server-api/_index.md#mimage, #maudio, #mvideo, #mfile
 */
import type { EncryptedFile } from "./attachmentCrypto";

export type MediaMsgType = "m.image" | "m.audio" | "m.video" | "m.file";

export const MEDIA_MSGTYPES: readonly string[] = ["m.image", "m.audio", "m.video", "m.file"];

/** Where bytes come from: a plain mxc:// URI, or an encrypted file to decrypt after download. */
export type MediaSource = { mxc: string; encrypted?: undefined } | { mxc: string; encrypted: EncryptedFile };

export interface MediaView {
  msgtype: MediaMsgType;
  /** The file name, or the caption-less body other clients use as one. */
  name: string;
  mimetype?: string;
  size?: number;
  w?: number;
  h?: number;
  /** Milliseconds. */
  duration?: number;
  source?: MediaSource;
  thumbnail?: MediaSource;
  thumbnailW?: number;
  thumbnailH?: number;
  isVoice: boolean;
  /** 0..1 amplitudes, from org.matrix.msc1767.audio.waveform (0..1024 there). */
  waveform?: number[];
}

/** Images the browser shows inline; anything else that says image/* is offered as a file. */
const INLINE_IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"];

export function msgtypeForFile(mimetype: string): MediaMsgType {
  if (INLINE_IMAGE_TYPES.includes(mimetype)) return "m.image";
  if (mimetype.startsWith("audio/")) return "m.audio";
  if (mimetype.startsWith("video/")) return "m.video";
  return "m.file";
}

/** `eventType` "m.sticker" reads a sticker as the image it is (it has no msgtype). */
export function readMediaContent(content: Record<string, unknown>, eventType = "m.room.message"): MediaView | null {
  const msgtype = eventType === "m.sticker" ? "m.image" : content.msgtype;
  if (typeof msgtype !== "string" || !MEDIA_MSGTYPES.includes(msgtype)) return null;
  const info = asRecord(content.info);
  const audio = asRecord(content["org.matrix.msc1767.audio"]);
  const name = str(content.filename) ?? str(content.body) ?? "file";
  const duration = num(info.duration) ?? num(audio.duration);
  const rawWaveform = Array.isArray(audio.waveform) ? audio.waveform : undefined;
  const waveform = rawWaveform?.every((v) => typeof v === "number")
    ? (rawWaveform as number[]).map((v) => Math.min(1, Math.max(0, v / 1024)))
    : undefined;
  const thumbnailInfo = asRecord(info.thumbnail_info);
  return {
    msgtype: msgtype as MediaMsgType,
    name,
    mimetype: str(info.mimetype),
    size: num(info.size),
    w: num(info.w),
    h: num(info.h),
    duration,
    source: readSource(content.url, content.file),
    thumbnail: readSource(info.thumbnail_url, info.thumbnail_file),
    thumbnailW: num(thumbnailInfo.w),
    thumbnailH: num(thumbnailInfo.h),
    isVoice: content["org.matrix.msc3245.voice"] !== undefined && msgtype === "m.audio",
    waveform,
  };
}

function readSource(url: unknown, file: unknown): MediaSource | undefined {
  const encrypted = asRecord(file);
  if (typeof encrypted.url === "string" && encrypted.url.startsWith("mxc://") && encrypted.key && encrypted.iv) {
    return { mxc: encrypted.url, encrypted: encrypted as unknown as EncryptedFile };
  }
  if (typeof url === "string" && url.startsWith("mxc://")) return { mxc: url };
  return undefined;
}

/** What we know about a file before sending it. */
export interface OutgoingMedia {
  msgtype: MediaMsgType;
  name: string;
  mimetype: string;
  size: number;
  w?: number;
  h?: number;
  duration?: number;
  /** Either `url` (plain room) or `file` (encrypted room). */
  url?: string;
  file?: EncryptedFile;
  thumbnail?: { url?: string; file?: EncryptedFile; mimetype: string; size: number; w: number; h: number };
  voice?: { waveform?: number[] };
}

export function buildMediaContent(media: OutgoingMedia): Record<string, unknown> {
  const info: Record<string, unknown> = { mimetype: media.mimetype, size: media.size };
  if (media.msgtype === "m.image" || media.msgtype === "m.video") {
    if (media.w) info.w = media.w;
    if (media.h) info.h = media.h;
  }
  if ((media.msgtype === "m.audio" || media.msgtype === "m.video") && media.duration !== undefined) {
    info.duration = Math.round(media.duration);
  }
  if (media.thumbnail) {
    const t = media.thumbnail;
    if (t.file) info.thumbnail_file = t.file;
    else info.thumbnail_url = t.url;
    info.thumbnail_info = { mimetype: t.mimetype, size: t.size, w: t.w, h: t.h };
  }
  const content: Record<string, unknown> = {
    msgtype: media.msgtype,
    body: media.voice ? "Voice message" : media.name,
    filename: media.name,
    info,
  };
  if (media.file) content.file = media.file;
  else content.url = media.url;
  if (media.voice) {
    // MSC3245 voice messages, as Element sends them, so other clients show a voice player.
    content["org.matrix.msc3245.voice"] = {};
    const audio: Record<string, unknown> = { duration: Math.round(media.duration ?? 0) };
    if (media.voice.waveform?.length) audio.waveform = media.voice.waveform.map((v) => Math.round(Math.min(1, Math.max(0, v)) * 1024));
    content["org.matrix.msc1767.audio"] = audio;
  }
  return content;
}

function asRecord(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}
function num(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;
}
