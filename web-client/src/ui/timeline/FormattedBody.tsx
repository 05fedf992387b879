/**
 * A message's HTML, sanitized (format/html.ts) before it reaches the page; its mxc://
 * images are loaded through the media helpers, which send the access token that
 * authenticated media needs, and are released when the message goes.
 */
import { useEffect, useMemo, useRef } from "preact/hooks";
import { client } from "../../state/app";
import { acquireMediaUrl } from "../../media/download";
import { displayHtml } from "../../format/html";

/** Inline images are thumbnails of at most this size (CSS pixels; fetched at twice that). */
const MAX_INLINE = 320;

export function FormattedBody(props: { html: string; class: string; prefix?: string }) {
  const safe = useMemo(() => displayHtml(props.html), [props.html]);
  const holder = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const matrix = client.value;
    const images = holder.current?.querySelectorAll<HTMLImageElement>("img[data-mxc]");
    if (!matrix || !images?.length) return;
    let live = true;
    const releases: (() => void)[] = [];
    for (const image of Array.from(images)) {
      const side = (attribute: string) => Math.min(Number(image.getAttribute(attribute)) || MAX_INLINE, MAX_INLINE) * 2;
      acquireMediaUrl(matrix, { mxc: image.dataset.mxc! }, undefined, { w: side("width"), h: side("height") }).then(
        (held) => {
          if (!live) return held.release();
          releases.push(held.release);
          image.src = held.url;
        },
        () => undefined, // the alt text stays
      );
    }
    return () => {
      live = false;
      for (const release of releases) release();
    };
  }, [safe]);
  return (
    <div class={`${props.class} formatted`}>
      {props.prefix}
      <div class="formatted-html" ref={holder} dangerouslySetInnerHTML={{ __html: safe }} />
    </div>
  );
}
