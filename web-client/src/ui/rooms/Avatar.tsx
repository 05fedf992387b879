/**
 * A round room or person image: the mxc thumbnail when there is one, the name's first
 * letter otherwise (and while loading, or when loading fails).  Thumbnails come
 * through media/download.ts (authenticated media needs the access token, so a bare
 * <img src> can't load them) and its shared cache of blob: URLs.
 */
import { useEffect, useState } from "preact/hooks";
import { client } from "../../state/app";
import { acquireMediaUrl } from "../../media/download";
import { initial } from "../../rooms/summary";
import "./rooms.css";

export function Avatar(props: { name: string; mxc?: string; size?: number }) {
  const size = props.size ?? 36;
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    setSrc(null);
    const matrix = client.value;
    if (!props.mxc || !matrix) return;
    let live = true;
    let release: (() => void) | undefined;
    // Twice the CSS size for sharp images on high-density screens.
    acquireMediaUrl(matrix, { mxc: props.mxc }, undefined, { w: size * 2, h: size * 2 }).then(
      (held) => {
        if (live) {
          release = held.release;
          setSrc(held.url);
        } else held.release();
      },
      () => undefined, // the letter stays
    );
    return () => {
      live = false;
      release?.();
    };
  }, [props.mxc, size]);
  const style = { width: `${size}px`, height: `${size}px`, fontSize: `${Math.round(size * 0.45)}px` };
  return src ? (
    <img class="rooms-avatar" src={src} alt="" style={style} />
  ) : (
    <span class="rooms-avatar rooms-avatar-letter" aria-hidden="true" style={{ ...style, background: colourFor(props.name) }}>
      {initial(props.name)}
    </span>
  );
}

/** A stable colour per name, so the same room keeps the same letter tile. */
function colourFor(name: string): string {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  return `hsl(${Math.abs(hash) % 360} 45% 42%)`;
}
