/**
 * A plain message's text cut into text and links (web addresses and e-mail
 * addresses), for rendering as elements: the text is never parsed as HTML.
 */
import { find } from "linkifyjs";

export type TextPart = { text: string; href?: undefined } | { text: string; href: string };

const SAFE_HREF = /^(?:https?:|mailto:)/i;

export function linkifyParts(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let position = 0;
  for (const link of find(text)) {
    if (!SAFE_HREF.test(link.href) || link.start < position) continue;
    if (link.start > position) parts.push({ text: text.slice(position, link.start) });
    parts.push({ text: text.slice(link.start, link.end), href: link.href });
    position = link.end;
  }
  if (position < text.length) parts.push({ text: text.slice(position) });
  return parts;
}
