/**
 * Voice messages: Record → (elapsed time, Stop, Cancel) → (listen, Send, Cancel).
 * MediaRecorder with Opus in WebM or Ogg, whichever the browser records; a coarse
 * waveform is sampled while recording (MSC3246's shape, 0..1 here, scaled on send).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { OFFLINE_ATTACH_TITLE, sendVoiceMessage } from "../../media/send";
import { pickRecordingType, summariseWaveform } from "../../media/voice";
import { formatDuration } from "../../media/format";
import { online } from "../../state/app";
import { MicIcon } from "./icons";

type Recorder =
  | { phase: "idle"; error?: string }
  | { phase: "starting" }
  | { phase: "recording"; startedAt: number }
  | { phase: "recorded"; blob: Blob; url: string; duration: number; waveform: number[] };

interface Session {
  recorder: MediaRecorder;
  stream: MediaStream;
  chunks: Blob[];
  levels: number[];
  audio?: AudioContext;
  sampler?: ReturnType<typeof setInterval>;
  discard: boolean;
}

export function VoiceRecorder(props: { roomId: string }) {
  const [state, setState] = useState<Recorder>({ phase: "idle" });
  const [now, setNow] = useState(Date.now());
  const session = useRef<Session | null>(null);
  const stopButton = useRef<HTMLButtonElement>(null);
  const sendButton = useRef<HTMLButtonElement>(null);
  const supported = typeof MediaRecorder === "function" && !!navigator.mediaDevices?.getUserMedia;

  useEffect(() => {
    if (state.phase !== "recording") return;
    stopButton.current?.focus();
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, [state.phase]);
  useEffect(() => {
    if (state.phase === "recorded") sendButton.current?.focus();
    return state.phase === "recorded" ? () => URL.revokeObjectURL(state.url) : undefined;
  }, [state]);
  // Leaving the room mid-recording releases the microphone.
  useEffect(() => () => release(session.current, true), []);

  const start = async () => {
    setState({ phase: "starting" });
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const mimeType = pickRecordingType((type) => MediaRecorder.isTypeSupported(type));
      const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
      const current: Session = { recorder, stream, chunks: [], levels: [], discard: false };
      session.current = current;
      sampleLevels(current);
      const startedAt = Date.now();
      recorder.ondataavailable = (event) => event.data.size && current.chunks.push(event.data);
      recorder.onstop = () => {
        release(current, false);
        if (current.discard) return;
        const type = (recorder.mimeType || mimeType || "audio/webm").split(";")[0]!;
        const blob = new Blob(current.chunks, { type });
        setState({ phase: "recorded", blob, url: URL.createObjectURL(blob), duration: Date.now() - startedAt, waveform: summariseWaveform(current.levels, 40) });
      };
      recorder.start(250);
      setNow(startedAt);
      setState({ phase: "recording", startedAt });
    } catch (error) {
      release(session.current, true);
      setState({ phase: "idle", error: `Microphone unavailable: ${error instanceof Error ? error.message : String(error)}` });
    }
  };
  const stop = () => session.current?.recorder.state === "recording" && session.current.recorder.stop();
  const cancel = () => {
    release(session.current, true);
    session.current = null;
    setState({ phase: "idle" });
  };
  const send = () => {
    if (state.phase !== "recorded") return;
    void sendVoiceMessage(props.roomId, state.blob, { duration: state.duration, waveform: state.waveform });
    session.current = null;
    setState({ phase: "idle" });
  };

  const isOnline = online.value;
  return (
    <>
      {state.phase === "recording" ? (
        <div class="media-recorder" role="group" aria-label="Voice message">
          <span class="media-recording-dot" aria-hidden="true" />
          <span role="timer" aria-label="Recording time">{formatDuration(now - state.startedAt)}</span>
          <button ref={stopButton} type="button" onClick={stop} aria-label="Stop recording">Stop</button>
          <button type="button" onClick={cancel}>Cancel</button>
        </div>
      ) : state.phase === "recorded" ? (
        <div class="media-recorder" role="group" aria-label="Voice message">
          <audio controls src={state.url} aria-label="Recorded voice message" />
          <span class="media-meta">{formatDuration(state.duration)}</span>
          <button ref={sendButton} type="button" class="primary" onClick={send} disabled={!isOnline} title={isOnline ? undefined : OFFLINE_ATTACH_TITLE} aria-label="Send voice message">Send</button>
          <button type="button" onClick={cancel}>Cancel</button>
        </div>
      ) : state.phase === "idle" && state.error ? (
        <div class="media-recorder" role="alert">
          <span class="error-text">{state.error}</span>
          <button type="button" onClick={() => setState({ phase: "idle" })}>Dismiss</button>
        </div>
      ) : null}
      <button
        type="button"
        class="icon-button media-record-button"
        aria-label="Record voice message"
        title={!supported ? "This browser cannot record audio" : isOnline ? "Record voice message" : OFFLINE_ATTACH_TITLE}
        disabled={!supported || !isOnline || state.phase !== "idle"}
        onClick={start}
      >
        <MicIcon />
      </button>
    </>
  );
}

/** Samples the microphone's loudness every 100 ms for the waveform. */
function sampleLevels(current: Session): void {
  try {
    const audio = new AudioContext();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 512;
    audio.createMediaStreamSource(current.stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    current.audio = audio;
    current.sampler = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      current.levels.push(Math.sqrt(sum / samples.length));
    }, 100);
  } catch {
    // No Web Audio: the message is sent without a waveform.
  }
}

function release(current: Session | null, discard: boolean): void {
  if (!current) return;
  if (discard) current.discard = true;
  if (current.sampler) clearInterval(current.sampler);
  void current.audio?.close().catch(() => undefined);
  current.audio = undefined;
  if (current.recorder.state !== "inactive") current.recorder.stop();
  for (const track of current.stream.getTracks()) track.stop();
}
