/**
 * The HTML of messages (`format: "org.matrix.custom.html"`), limited to what the spec
 * suggests: its tags, and on each tag only its attributes, with URLs of the allowed
 * schemes.  Everything else goes: scripts, styles, event handlers, `javascript:` and
 * relative links, images that are not mxc://, and the old `<mx-reply>` fallback with
 * its content.  spec: client-server-api/modules/instant_messaging.md (m.room.message
 * msgtypes, the HTML paragraphs), modules/rich_replies.md (mx-reply).
 */
import DOMPurify, { type DOMPurify as Purifier } from "dompurify";

const ALLOWED_TAGS = [
  "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup", "sub", "li", "b", "i", "u",
  "strong", "em", "s", "code", "hr", "br", "div", "table", "thead", "tbody", "tr", "th", "td", "caption", "pre",
  "span", "img", "details", "summary",
];

/** The attributes each tag may keep; a tag not listed keeps none. */
const TAG_ATTRIBUTES: Record<string, readonly string[]> = {
  span: ["data-mx-bg-color", "data-mx-color", "data-mx-spoiler", "data-mx-maths"],
  a: ["target", "href"],
  img: ["width", "height", "alt", "title", "src"],
  ol: ["start"],
  code: ["class"],
  div: ["data-mx-maths"],
};
const ALLOWED_ATTR = [...new Set(Object.values(TAG_ATTRIBUTES).flat())];
/** Attributes that are not addresses: DOMPurify would otherwise test their values as URLs (the hook checks them). */
const NOT_URLS = ALLOWED_ATTR.filter((name) => name !== "href" && name !== "src");

const LINK_SCHEME = /^(?:https?|ftp|mailto|magnet):/i;
const MXC = /^mxc:\/\/[^/\s]+\/[^/\s]+$/;
const HEX_COLOUR = /^#[0-9a-fA-F]{6}$/;
const NUMBER = /^\d{1,6}$/;
/** Tags must not be nested deeper than this (spec); deeper ones are kept as their text. */
const MAX_DEPTH = 100;

let purifier: Purifier | null = null;

function getPurifier(): Purifier {
  if (purifier) return purifier;
  // An instance of our own: the hooks below apply to message HTML only.
  const instance = DOMPurify(window);
  instance.addHook("uponSanitizeAttribute", (node, data) => {
    const allowed = TAG_ATTRIBUTES[node.nodeName.toLowerCase()];
    if (!allowed?.includes(data.attrName)) {
      data.keepAttr = false;
      return;
    }
    const value = data.attrValue.trim();
    switch (data.attrName) {
      case "href":
        data.keepAttr = LINK_SCHEME.test(value);
        break;
      case "src":
        data.keepAttr = MXC.test(value);
        break;
      case "data-mx-color":
      case "data-mx-bg-color":
        data.keepAttr = HEX_COLOUR.test(value);
        break;
      case "width":
      case "height":
      case "start":
        data.keepAttr = NUMBER.test(value);
        break;
      case "class": {
        // Only syntax-highlighting hints (spec: code may carry "language-*" classes).
        const languages = value.split(/\s+/).filter((name) => /^language-[\w+#.-]+$/.test(name));
        data.attrValue = languages.join(" ");
        data.keepAttr = languages.length > 0;
        break;
      }
    }
  });
  purifier = instance;
  return instance;
}

function purify(html: string): DocumentFragment {
  const fragment = getPurifier().sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
    ALLOWED_URI_REGEXP: /^(?:(?:https?|ftp|mailto|magnet|mxc):)/i,
    ADD_URI_SAFE_ATTR: NOT_URLS,
    ADD_FORBID_CONTENTS: ["mx-reply"],
    RETURN_DOM_FRAGMENT: true,
  });
  for (const image of Array.from(fragment.querySelectorAll("img"))) {
    // An image we may not load is worth its description.
    if (!image.hasAttribute("src")) image.replaceWith(image.getAttribute("alt") ?? "");
  }
  flattenBeyond(fragment, MAX_DEPTH);
  return fragment;
}

function flattenBeyond(root: ParentNode, depthLeft: number): void {
  for (const child of Array.from(root.children)) {
    if (depthLeft <= 0) child.replaceWith(child.textContent ?? "");
    else flattenBeyond(child, depthLeft - 1);
  }
}

function serialize(fragment: DocumentFragment): string {
  const holder = document.createElement("div");
  holder.append(fragment);
  return holder.innerHTML;
}

/** HTML fit to send in an event: only the spec's tags and attributes. */
export function cleanHtml(html: string): string {
  return serialize(purify(html));
}

/**
 * HTML fit to show: cleaned as for sending, then links open in a new tab without a
 * reference to this one, colours become CSS, spoilers can take the focus (to reveal
 * them by keyboard), and mxc:// images wait in `data-mxc` for the media helpers to
 * load them (they need the access token: see FormattedBody).
 */
export function displayHtml(html: string): string {
  const fragment = purify(html);
  for (const link of Array.from(fragment.querySelectorAll("a"))) {
    if (!link.hasAttribute("href")) continue;
    link.setAttribute("target", "_blank");
    link.setAttribute("rel", "noopener noreferrer");
  }
  for (const image of Array.from(fragment.querySelectorAll("img"))) {
    image.setAttribute("data-mxc", image.getAttribute("src")!);
    image.removeAttribute("src");
  }
  for (const element of Array.from(fragment.querySelectorAll<HTMLElement>("[data-mx-color], [data-mx-bg-color]"))) {
    const colour = element.getAttribute("data-mx-color");
    const background = element.getAttribute("data-mx-bg-color");
    if (colour) element.style.color = colour;
    if (background) element.style.backgroundColor = background;
  }
  for (const spoiler of Array.from(fragment.querySelectorAll("[data-mx-spoiler]"))) {
    spoiler.setAttribute("tabindex", "0");
    const reason = spoiler.getAttribute("data-mx-spoiler");
    spoiler.setAttribute("title", reason ? `Spoiler: ${reason}` : "Spoiler");
  }
  return serialize(fragment);
}
