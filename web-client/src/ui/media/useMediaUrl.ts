/**
 * Hooks that load media only when shown: `useInView` (IntersectionObserver, so a long
 * history does not download every picture) and `useMediaUrl` (a blob: URL from the
 * shared cache, released on unmount).
 */
import type { RefObject } from "preact";
import { useEffect, useState } from "preact/hooks";
import { acquireMediaUrl, type ThumbnailSize } from "../../media/download";
import type { MediaSource } from "../../media/content";
import { client } from "../../state/app";

export function useInView(ref: RefObject<Element | null>, rootMargin = "300px"): boolean {
  const [inView, setInView] = useState(false);
  useEffect(() => {
    const element = ref.current;
    if (inView || !element) return;
    if (typeof IntersectionObserver !== "function") {
      setInView(true);
      return;
    }
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting)) {
          setInView(true);
          observer.disconnect();
        }
      },
      { rootMargin },
    );
    observer.observe(element);
    return () => observer.disconnect();
  }, [ref.current, inView]);
  return inView;
}

export interface MediaUrlState {
  url?: string;
  error?: string;
  loading: boolean;
}

export function useMediaUrl(source: MediaSource | undefined, mimetype: string | undefined, size: ThumbnailSize | undefined, enabled: boolean): MediaUrlState {
  const [state, setState] = useState<MediaUrlState>({ loading: false });
  const key = source ? `${source.mxc}|${size?.w}x${size?.h}` : "";
  useEffect(() => {
    const matrix = client.value;
    if (!enabled || !source || !matrix) return;
    let active = true;
    let release: (() => void) | undefined;
    setState({ loading: true });
    acquireMediaUrl(matrix, source, mimetype, size).then(
      (held) => {
        if (!active) return held.release();
        release = held.release;
        setState({ url: held.url, loading: false });
      },
      (error: unknown) => {
        if (active) setState({ error: error instanceof Error ? error.message : String(error), loading: false });
      },
    );
    return () => {
      active = false;
      release?.();
    };
  }, [key, enabled]);
  return state;
}
