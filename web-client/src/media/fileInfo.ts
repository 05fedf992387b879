/**
 * What the sender learns from a file before sending it: an image's pixel size and a
 * smaller thumbnail, an audio or video file's duration, a video's first frame.
 * Browser-only (canvas, media elements); each gives up quietly after a timeout,
 * because a file the browser cannot decode is still sent, as a plain file.
 */
export const THUMBNAIL_MAX = 800;
/** Smaller images are shown as they are: a thumbnail would save nothing. */
const THUMBNAIL_WORTH_BYTES = 200_000;

export interface Thumbnail {
  blob: Blob;
  w: number;
  h: number;
}

export async function readImage(file: Blob): Promise<{ w: number; h: number; thumbnail?: Thumbnail } | undefined> {
  const url = URL.createObjectURL(file);
  try {
    const image = await loadImage(url);
    const w = image.naturalWidth;
    const h = image.naturalHeight;
    if (!w || !h) return undefined;
    const needsThumbnail = (Math.max(w, h) > THUMBNAIL_MAX || file.size > THUMBNAIL_WORTH_BYTES) && file.type !== "image/gif";
    const thumbnail = needsThumbnail ? await drawThumbnail(image, w, h) : undefined;
    return { w, h, thumbnail: thumbnail && thumbnail.blob.size < file.size ? thumbnail : undefined };
  } catch {
    return undefined;
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** Duration in ms, and for a video its pixel size and first frame. */
export async function readPlayable(file: Blob, kind: "audio" | "video"): Promise<{ duration?: number; w?: number; h?: number; poster?: Thumbnail }> {
  const url = URL.createObjectURL(file);
  const element = document.createElement(kind);
  element.preload = "metadata";
  element.muted = true;
  try {
    await waitFor(element, "loadedmetadata", () => (element.src = url));
    let duration = Number.isFinite(element.duration) ? element.duration * 1000 : undefined;
    if (duration === undefined) duration = await durationOfStreamingFile(element);
    if (!(element instanceof HTMLVideoElement)) return { duration };
    const w = element.videoWidth || undefined;
    const h = element.videoHeight || undefined;
    let poster: Thumbnail | undefined;
    if (w && h) {
      await waitFor(element, "seeked", () => (element.currentTime = Math.min(0.1, (duration ?? 0) / 2000)));
      poster = await drawThumbnail(element, w, h);
    }
    return { duration, w, h, poster };
  } catch {
    return {};
  } finally {
    element.removeAttribute("src");
    element.load();
    URL.revokeObjectURL(url);
  }
}

async function drawThumbnail(source: CanvasImageSource, w: number, h: number): Promise<Thumbnail | undefined> {
  const scale = Math.min(1, THUMBNAIL_MAX / Math.max(w, h));
  const tw = Math.max(1, Math.round(w * scale));
  const th = Math.max(1, Math.round(h * scale));
  const canvas = document.createElement("canvas");
  canvas.width = tw;
  canvas.height = th;
  const context = canvas.getContext("2d");
  if (!context) return undefined;
  context.drawImage(source, 0, 0, tw, th);
  // WebP where the browser encodes it (it keeps transparency), JPEG otherwise.
  let blob = await toBlob(canvas, "image/webp", 0.82);
  if (!blob || blob.type !== "image/webp") blob = await toBlob(canvas, "image/jpeg", 0.82);
  return blob ? { blob, w: tw, h: th } : undefined;
}

function toBlob(canvas: HTMLCanvasElement, type: string, quality: number): Promise<Blob | null> {
  return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
}

function loadImage(url: string): Promise<HTMLImageElement> {
  const image = new Image();
  return waitFor(image, "load", () => (image.src = url)).then(() => image);
}

/** MediaRecorder's WebM has no duration in its header: seeking far ahead makes the browser find it. */
async function durationOfStreamingFile(element: HTMLMediaElement): Promise<number | undefined> {
  try {
    await waitFor(element, "durationchange", () => (element.currentTime = 1e7), 3000);
  } catch {
    return undefined;
  }
  return Number.isFinite(element.duration) ? element.duration * 1000 : undefined;
}

function waitFor(target: HTMLElement, event: string, start: () => void, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${event}`)), timeoutMs);
    const onEvent = () => finish();
    const onError = () => finish(new Error(`could not decode the file`));
    function finish(error?: Error) {
      clearTimeout(timer);
      target.removeEventListener(event, onEvent);
      target.removeEventListener("error", onError);
      if (error) reject(error);
      else resolve();
    }
    target.addEventListener(event, onEvent);
    target.addEventListener("error", onError);
    start();
  });
}
