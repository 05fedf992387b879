/**
 * The composer's simple markdown (**bold**, *italic*, `code`, ``` blocks ```, links,
 * lists, quotes) as the HTML of a message.  The text the user typed stays the event's
 * `body`; `formatted_body` is sent only when the markdown changes something, so plain
 * text is sent as plain text.  HTML typed by the user is shown as typed, not
 * interpreted.  spec: client-server-api/modules/instant_messaging.md ("clients should
 * not generate HTML that is not needed").
 */
import { Marked, type Token } from "marked";
import { cleanHtml } from "./html";

const markdown = new Marked({
  async: false,
  gfm: true,
  breaks: true, // a chat message's line breaks are meant
  renderer: {
    html: ({ text }) => escapeHtml(text),
  },
});

/** Tokens that leave the text as it was typed. */
const PLAIN_TYPES = new Set(["paragraph", "text", "space", "br", "html"]);

function isPlain(tokens: Token[]): boolean {
  return tokens.every((token) => {
    // A bare URL or address that GFM turns into a link: the plain text is linked when shown anyway.
    if (token.type === "link") return token.raw === token.text;
    if (!PLAIN_TYPES.has(token.type)) return false;
    const children = (token as { tokens?: Token[] }).tokens;
    return !children || isPlain(children);
  });
}

/** The HTML for `text`, or null when the markdown would not change how it reads. */
export function markdownToHtml(text: string): string | null {
  const tokens = markdown.lexer(text);
  if (isPlain(tokens)) return null;
  let html = (markdown.parser(tokens) as string).trim();
  // A lone paragraph needs no <p> around it.
  const single = /^<p>([\s\S]*)<\/p>$/.exec(html);
  if (single && !single[1]!.includes("<p>")) html = single[1]!;
  return cleanHtml(html);
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}
