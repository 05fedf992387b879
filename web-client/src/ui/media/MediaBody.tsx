/**
 * The body of an m.image / m.audio (voice messages included) / m.video / m.file
 * message: an inline picture that opens a lightbox, a player, or a download card.
 * Bytes are fetched only once the message scrolls into view.
 */
import type { MatrixEvent } from "matrix-js-sdk";
import type { JSX } from "preact";
import { useRef, useState } from "preact/hooks";
import { readMediaContent, type MediaView } from "../../media/content";
import { downloadToDisk } from "../../media/download";
import { fitWithin, formatDuration, humanSize } from "../../media/format";
import { client } from "../../state/app";
import { FileIcon, MicIcon, MusicIcon, PlayIcon } from "./icons";
import { Lightbox } from "./Lightbox";
import { useInView, useMediaUrl } from "./useMediaUrl";
import "./media.css";

/** The largest inline picture, in CSS pixels; thumbnails are asked at twice that for sharp screens. */
const INLINE_MAX = 320;
const THUMBNAIL_REQUEST = { w: 640, h: 640 };

export function MediaBody(props: { event: MatrixEvent }): JSX.Element {
  const view = readMediaContent(props.event.getContent(), props.event.getType());
  if (!view || !view.source) {
    return <p class="media-missing">{String(props.event.getContent().body ?? "Attachment")} (no file attached)</p>;
  }
  switch (view.msgtype) {
    case "m.image":
      return <ImageBody view={view} alt={String(props.event.getContent().body ?? view.name)} />;
    case "m.audio":
      return <AudioBody view={view} />;
    case "m.video":
      return <VideoBody view={view} />;
    default:
      return <FileCard view={view} />;
  }
}

function ImageBody({ view, alt }: { view: MediaView; alt: string }) {
  const ref = useRef<HTMLButtonElement>(null);
  const inView = useInView(ref);
  const [open, setOpen] = useState(false);
  const [natural, setNatural] = useState<{ w: number; h: number }>();
  const box = fitWithin(view.w ?? natural?.w, view.h ?? natural?.h, INLINE_MAX);
  // Encrypted: the sender's encrypted thumbnail if any, else the whole file.  Plain: a
  // server-made thumbnail, except for small images and GIFs (keeps the animation).
  const small = view.w !== undefined && view.h !== undefined && Math.max(view.w, view.h) <= THUMBNAIL_REQUEST.w;
  const inline = view.source!.encrypted
    ? { source: view.thumbnail ?? view.source!, size: undefined }
    : { source: view.source!, size: small || view.mimetype === "image/gif" ? undefined : THUMBNAIL_REQUEST };
  const mimetype = inline.source === view.thumbnail ? undefined : view.mimetype;
  const { url, error } = useMediaUrl(inline.source, mimetype ?? "image/jpeg", inline.size, inView);
  const style = box ? { width: `${box.w}px`, aspectRatio: `${box.w} / ${box.h}` } : undefined;
  return (
    <>
      <button
        ref={ref}
        type="button"
        class={box ? "media-image" : "media-image unsized"}
        style={style}
        onClick={() => setOpen(true)}
        aria-label={`Open image ${view.name}`}
      >
        {url ? (
          <img
            src={url}
            alt={alt}
            width={box?.w}
            height={box?.h}
            onLoad={(e) => !box && setNatural({ w: e.currentTarget.naturalWidth, h: e.currentTarget.naturalHeight })}
          />
        ) : (
          <span class="media-placeholder">{error ? `Image unavailable: ${error}` : "Loading image…"}</span>
        )}
      </button>
      {open ? <Lightbox source={view.source!} mimetype={view.mimetype} name={view.name} alt={alt} onClose={() => setOpen(false)} /> : null}
    </>
  );
}

function AudioBody({ view }: { view: MediaView }) {
  const ref = useRef<HTMLDivElement>(null);
  const inView = useInView(ref);
  const { url, error } = useMediaUrl(view.source, view.mimetype ?? "audio/webm", undefined, inView);
  const label = view.isVoice ? "Voice message" : view.name;
  return (
    <div ref={ref} class={view.isVoice ? "media-audio voice" : "media-audio"}>
      <div class="media-audio-head">
        <span class="media-audio-icon">{view.isVoice ? <MicIcon /> : <MusicIcon />}</span>
        <span class="media-audio-title">{view.isVoice ? "Voice message" : view.name}</span>
        <span class="media-meta">{[formatDuration(view.duration), view.isVoice ? "" : humanSize(view.size)].filter(Boolean).join(" · ")}</span>
      </div>
      {view.waveform?.length ? <Waveform values={view.waveform} /> : null}
      {error ? (
        <p class="error-text">{`Audio unavailable: ${error}`}</p>
      ) : (
        <audio controls preload="metadata" src={url} aria-label={label} onLoadedMetadata={revealDuration} />
      )}
    </div>
  );
}

/**
 * Recordings from MediaRecorder (WebM) carry no duration, so the player would show
 * none: seeking past the end makes the browser find it; then back to the start.
 */
function revealDuration(event: Event) {
  const audio = event.currentTarget as HTMLAudioElement;
  if (Number.isFinite(audio.duration)) return;
  const rewind = () => {
    if (!Number.isFinite(audio.duration)) return;
    audio.removeEventListener("durationchange", rewind);
    audio.currentTime = 0;
  };
  audio.addEventListener("durationchange", rewind);
  audio.currentTime = 1e7;
}

function Waveform({ values }: { values: number[] }) {
  return (
    <div class="media-waveform" aria-hidden="true">
      {values.map((v, i) => (
        <span key={i} style={{ height: `${Math.max(8, Math.round(v * 100))}%` }} />
      ))}
    </div>
  );
}

function VideoBody({ view }: { view: MediaView }) {
  const ref = useRef<HTMLDivElement>(null);
  const inView = useInView(ref);
  // The poster loads with the page; the video itself (possibly large) when asked for.
  const [playing, setPlaying] = useState(false);
  const posterSource = view.thumbnail ?? (view.source!.encrypted ? undefined : view.source);
  const poster = useMediaUrl(posterSource, view.thumbnail ? undefined : "image/jpeg", view.thumbnail ? undefined : THUMBNAIL_REQUEST, inView && !!posterSource);
  const video = useMediaUrl(view.source, view.mimetype ?? "video/mp4", undefined, playing);
  const box = fitWithin(view.w, view.h, INLINE_MAX) ?? { w: INLINE_MAX, h: Math.round((INLINE_MAX * 9) / 16) };
  const style = { width: `${box.w}px`, aspectRatio: `${box.w} / ${box.h}` };
  return (
    <div ref={ref} class="media-video">
      {video.url ? (
        <video controls autoplay src={video.url} poster={poster.url} style={style} aria-label={view.name} />
      ) : (
        <button type="button" class="media-video-start" style={{ ...style, backgroundImage: poster.url ? `url(${poster.url})` : undefined }} onClick={() => setPlaying(true)}>
          <span class="media-play" aria-hidden="true"><PlayIcon /></span>
          <span class="visually-hidden">Play video {view.name}</span>
          {video.loading ? <span class="media-meta">Loading…</span> : null}
        </button>
      )}
      <div class="media-meta">
        {[view.name, formatDuration(view.duration), humanSize(view.size)].filter(Boolean).join(" · ")}
        {video.error ? <span class="error-text"> {video.error}</span> : null}
      </div>
    </div>
  );
}

function FileCard({ view }: { view: MediaView }) {
  const [state, setState] = useState<{ busy: boolean; error?: string }>({ busy: false });
  const download = async () => {
    const matrix = client.value;
    if (!matrix || !view.source) return;
    setState({ busy: true });
    try {
      await downloadToDisk(matrix, view.source, view.name, view.mimetype);
      setState({ busy: false });
    } catch (error) {
      setState({ busy: false, error: error instanceof Error ? error.message : String(error) });
    }
  };
  return (
    <div class="media-file">
      <span class="media-file-icon"><FileIcon label={fileLabel(view)} /></span>
      <div class="media-file-text">
        <span class="media-file-name">{view.name}</span>
        <span class="media-meta">{[humanSize(view.size), view.mimetype].filter(Boolean).join(" · ")}</span>
        {state.error ? <span class="error-text" role="alert">{state.error}</span> : null}
      </div>
      <button type="button" onClick={download} disabled={state.busy} aria-label={`Download ${view.name}`}>
        {state.busy ? "Downloading…" : "Download"}
      </button>
    </div>
  );
}

/** A short type label on the file icon: "PDF", "ZIP", "TXT"… from the name or type. */
function fileLabel(view: MediaView): string | undefined {
  const extension = /\.([a-z0-9]{1,4})$/i.exec(view.name)?.[1];
  if (extension) return extension.toUpperCase();
  const subtype = view.mimetype?.split("/")[1]?.split(/[;+.-]/)[0];
  return subtype && subtype.length <= 4 ? subtype.toUpperCase() : undefined;
}
