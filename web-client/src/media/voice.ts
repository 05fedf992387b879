/** Pure helpers for recording voice messages. */

/** Opus in WebM (Chromium, Firefox) or Ogg, else AAC in MP4 (Safari), else the browser's default. */
export const RECORDING_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];

export function pickRecordingType(isSupported: (type: string) => boolean): string | undefined {
  return RECORDING_TYPES.find((type) => {
    try {
      return isSupported(type);
    } catch {
      return false;
    }
  });
}

/** Reduces loudness samples to `bars` values in 0..1, the loudest bar at 1. */
export function summariseWaveform(levels: readonly number[], bars: number): number[] {
  if (!levels.length || bars <= 0) return [];
  const out: number[] = [];
  const count = Math.min(bars, levels.length);
  for (let i = 0; i < count; i++) {
    const from = Math.floor((i * levels.length) / count);
    const to = Math.max(from + 1, Math.floor(((i + 1) * levels.length) / count));
    let peak = 0;
    for (let j = from; j < to; j++) peak = Math.max(peak, levels[j]!);
    out.push(peak);
  }
  const max = Math.max(...out);
  return max > 0 ? out.map((v) => Math.round((v / max) * 1000) / 1000) : out.map(() => 0);
}
