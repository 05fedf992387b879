/**
 * The composer's attachment controls: the file input "Attach file" (visually a
 * paperclip: the input stays in the page, visually hidden, so it keeps its name,
 * takes keyboard focus and accepts setInputFiles), the voice recorder, and the
 * progress of this room's uploads.  Attaching needs the server, so it is disabled
 * offline with a title that says so.
 */
import type { JSX } from "preact";
import { useId } from "preact/hooks";
import { OFFLINE_ATTACH_TITLE, cancelUpload, dismissUpload, retryUpload, sendFiles, uploads } from "../../media/send";
import { online } from "../../state/app";
import { PaperclipIcon } from "./icons";
import { VoiceRecorder } from "./VoiceRecorder";
import "./media.css";

export function AttachButton(props: { roomId: string }): JSX.Element {
  const id = useId();
  const isOnline = online.value;
  const onChange = (event: Event) => {
    const input = event.currentTarget as HTMLInputElement;
    const files = [...(input.files ?? [])];
    input.value = ""; // the same file can be chosen again
    if (files.length) void sendFiles(props.roomId, files);
  };
  return (
    <div class="media-attach">
      <UploadList roomId={props.roomId} />
      <input
        id={id}
        type="file"
        multiple
        class="visually-hidden media-file-input"
        aria-label="Attach file"
        disabled={!isOnline}
        title={isOnline ? "Attach file" : OFFLINE_ATTACH_TITLE}
        onChange={onChange}
      />
      <label for={id} class={isOnline ? "media-attach-label" : "media-attach-label disabled"} title={isOnline ? "Attach file" : OFFLINE_ATTACH_TITLE}>
        <PaperclipIcon />
      </label>
      <VoiceRecorder roomId={props.roomId} />
    </div>
  );
}

function UploadList(props: { roomId: string }) {
  const mine = uploads.value.filter((job) => job.roomId === props.roomId);
  if (!mine.length) return null;
  return (
    <ul class="media-uploads" aria-label="Uploads">
      {mine.map((job) => {
        const percent = job.total ? Math.min(100, Math.round((job.loaded / job.total) * 100)) : 0;
        const status =
          job.state === "failed" ? "Failed" : job.state === "waiting" ? "Waiting" : job.state === "preparing" ? "Preparing" : job.state === "sending" ? "Sending" : `${percent}%`;
        return (
          <li key={job.id} class={job.state === "failed" ? "media-upload failed" : "media-upload"}>
            <div class="media-upload-row">
              <span class="media-upload-name">{job.name}</span>
              <span class="media-meta">{status}</span>
              {job.state === "failed" && job.retryable ? (
                <button type="button" onClick={() => retryUpload(job.id)} disabled={!online.value} aria-label={`Retry ${job.name}`}>Retry</button>
              ) : null}
              {job.state === "failed" ? (
                <button type="button" onClick={() => dismissUpload(job.id)} aria-label={`Dismiss ${job.name}`}>Dismiss</button>
              ) : job.state !== "sending" ? (
                <button type="button" onClick={() => cancelUpload(job.id)} aria-label={`Cancel upload of ${job.name}`}>Cancel</button>
              ) : null}
            </div>
            {job.state === "failed" ? (
              <p class="error-text" role="alert">{job.error}</p>
            ) : (
              <progress max={100} value={job.state === "uploading" || job.state === "sending" ? percent : undefined} aria-label={`Uploading ${job.name}`} />
            )}
          </li>
        );
      })}
    </ul>
  );
}
