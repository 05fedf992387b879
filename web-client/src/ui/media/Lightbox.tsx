/**
 * The full-size image in a modal (the shared Dialog: focus trapped, Escape closes),
 * with a download link under its own file name.
 */
import { Dialog } from "../Dialog";
import type { MediaSource } from "../../media/content";
import { useMediaUrl } from "./useMediaUrl";
import "./media.css";

export function Lightbox(props: { source: MediaSource; mimetype?: string; name: string; alt: string; onClose: () => void }) {
  const full = useMediaUrl(props.source, props.mimetype, undefined, true);
  return (
    <Dialog title={props.name} onClose={props.onClose} wide>
      <div class="media-lightbox">
        {full.url ? (
          <img src={full.url} alt={props.alt} />
        ) : full.error ? (
          <p class="error-text" role="alert">{full.error}</p>
        ) : (
          <p class="media-loading" role="status">Loading image…</p>
        )}
      </div>
      <div class="media-lightbox-actions">
        {full.url ? (
          <a class="media-download-link" href={full.url} download={props.name}>Download</a>
        ) : null}
        <button type="button" onClick={props.onClose}>Close</button>
      </div>
    </Dialog>
  );
}
