"""OpenGraph data of an HTML page, for URL previews: pure parsing, no I/O.

spec: data/api/client-server/authed-content-repo.yaml, ``GET /media/preview_url``: the
response is "the OpenGraph data for the URL, which may be empty" (https://ogp.me/):
``og:*`` keys with string values.  Pages without OpenGraph tags still get a useful
preview from what every page has: ``<title>``, the description ``<meta>``, the first
paragraph and the first sizeable image.

The page is untrusted and often broken, so this parses with the standard library's
tolerant tokenizer (no tree, so no recursion depth an attacker can choose), never
raises (garbage in, ``{}`` out), caps every string it returns, keeps only http(s)
URLs, and stops reading once it has what it needs, or after :data:`MAX_PARSED_CHARS`
(parsing is CPU work on the reactor thread, so its cost must be bounded).
"""

from __future__ import annotations

import codecs
import logging
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

logger = logging.getLogger(__name__)

#: How much of a page is parsed (characters).  OpenGraph tags live in ``<head>``,
#: the fallbacks near the top of ``<body>``; html.parser reads a few MB a second on
#: ordinary pages but only about one character a microsecond on hostile ones ("<<<<").
MAX_PARSED_CHARS = 256 * 1024
#: Fed to the parser at a time, so parsing stops soon after everything is found.
_CHUNK_CHARS = 16 * 1024
#: The parser keeps an unfinished construct (a tag, a comment) and rescans it whole on
#: every feed: one that never ends would make parsing quadratic.  No real tag is this
#: long, so past it the page is given up on.
MAX_PENDING_CHARS = 32 * 1024
#: Where a ``<meta charset>`` must be to count (the HTML spec's prescan reads 1024
#: bytes; pages with a long comment first are common enough to look a little further).
_CHARSET_PRESCAN_BYTES = 4096

#: Longest string value returned; longer ones are cut (at a word where possible).
MAX_VALUE_CHARS = 1000
#: Longest URL value kept (signed CDN URLs run long); a cut URL is useless, so longer
#: ones are dropped rather than cut.
MAX_URL_CHARS = 2048
#: A description made from the page's first paragraph is cut shorter: it is a teaser.
MAX_PARAGRAPH_CHARS = 500
#: At most this many ``og:*`` keys, each name at most this long: a page repeating
#: made-up tags must not make a huge preview (it is stored, and sent to every client).
MAX_KEYS = 64
MAX_KEY_CHARS = 64
#: ``<img>`` declared smaller than this (either side, in CSS pixels) is an icon, a
#: spacer or a tracking pixel, not the page's picture.
MIN_IMAGE_SIDE = 50

#: Keys whose values are URLs: resolved against the page, dropped unless http(s).
_URL_KEYS = frozenset(
    f"og:{kind}{suffix}"
    for kind in ("image", "video", "audio")
    for suffix in ("", ":url", ":secure_url")
) | {"og:url"}

#: Text inside these is not page text.
_SKIPPED_ELEMENTS = frozenset({"script", "style", "noscript", "template", "svg", "math"})
#: Starting one of these ends an unclosed ``<p>`` (HTML's implied ``</p>``, roughly).
_BLOCK_ELEMENTS = frozenset(
    {
        "p", "div", "section", "article", "aside", "header", "footer", "nav", "main",
        "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "form", "pre",
        "blockquote", "hr", "figure", "dl",
    }
)  # fmt: skip

_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:\-]+)""", re.I)
_CONTENT_TYPE_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_WHITESPACE = re.compile(r"\s+")


def parse_html_preview(body: bytes, *, url: str, content_type_header: str | None) -> dict[str, Any]:
    """The ``og:*`` keys of the page ``body`` fetched from ``url`` (whose relative URLs
    are resolved against it); ``{}`` when there is nothing to show or it is not HTML."""
    try:
        text = _decode(body, content_type_header)
        parser = _PreviewParser()
        limit = min(len(text), MAX_PARSED_CHARS)
        for start in range(0, limit, _CHUNK_CHARS):
            parser.feed(text[start : min(start + _CHUNK_CHARS, limit)])
            if parser.has_everything() or len(parser.rawdata) > MAX_PENDING_CHARS:
                break
        else:
            if limit == len(text):
                # The whole page was read: what is left over (text after the last
                # tag) is content.  After a cut it would be a tag's broken half.
                parser.close()
        parser.finish()
        return _preview(parser, url)
    except Exception:
        # The tokenizer is tolerant, but the page is hostile by assumption: a preview
        # is a nicety, never a reason for an error.
        logger.info("Could not parse the HTML of %s", url, exc_info=True)
        return {}


def _decode(body: bytes, content_type_header: str | None) -> str:
    """The page as text, in the encoding the HTML spec would pick (simplified): a BOM,
    else the ``Content-Type`` charset, else a ``<meta>`` one, else UTF-8; undecodable
    bytes become U+FFFD."""
    # No more than MAX_PARSED_CHARS characters are parsed; no character takes more
    # than four bytes in any encoding a page uses.
    body = body[: MAX_PARSED_CHARS * 4]
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace")
    encoding = None
    if content_type_header:
        match = _CONTENT_TYPE_CHARSET.search(content_type_header)
        encoding = _known_encoding(match.group(1)) if match else None
    if encoding is None:
        head = body[:_CHARSET_PRESCAN_BYTES]
        declared = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
        encoding = _known_encoding(declared.group(1).decode("ascii")) if declared else None
        # A <meta> cannot be right about UTF-16 (it was read as ASCII); the HTML spec
        # says to take UTF-8 then.
        if encoding is not None and encoding.startswith("utf-16"):
            encoding = "utf-8"
    return body.decode(encoding or "utf-8", errors="replace")


def _known_encoding(label: str) -> str | None:
    try:
        name = codecs.lookup(label).name
        # Only text encodings: Python also has codecs named "base64" and "zlib".
        b"ab".decode(name, errors="replace")
    except LookupError:
        return None
    # Latin-1 is what pages labelled so mean by it in practice (the HTML spec maps the
    # label to windows-1252, which decodes 0x80-0x9F as the characters intended).
    return "cp1252" if name == "iso8859-1" else name


class _PreviewParser(HTMLParser):
    """Collects what a preview needs as the tokenizer walks the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        #: ``og:*``, ``twitter:*`` and ``description`` metas, first occurrence of each.
        self.meta: dict[str, str] = {}
        self.title: str | None = None
        self.paragraph: str | None = None
        self.image: str | None = None
        self._head_done = False
        self._skip_depth = 0
        self._title_parts: list[str] | None = None
        self._paragraph_parts: list[str] | None = None
        self._paragraph_length = 0

    def has_everything(self) -> bool:
        """Whether reading on could change the preview."""
        title = "og:title" in self.meta or self.title is not None
        description = "og:description" in self.meta or "description" in self.meta or self.paragraph
        image = "og:image" in self.meta or self.image is not None
        return self._head_done and title and bool(description) and image

    def finish(self) -> None:
        """End what the page left open (or what was open where parsing stopped)."""
        if self._title_parts is not None and self.title is None:
            self.title = _clean("".join(self._title_parts)) or None
            self._title_parts = None
        self._end_paragraph()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skip_depth += 1
            return
        if self._skip_depth:
            return
        if tag == "body":
            self._head_done = True
        elif tag == "meta":
            self._meta(dict(attrs))
        elif tag == "title" and self.title is None:
            self._title_parts = []
        elif tag == "img":
            self._img(dict(attrs))
        if tag in _BLOCK_ELEMENTS:
            self._end_paragraph()
            if tag == "p" and self.paragraph is None:
                self._paragraph_parts = []
                self._paragraph_length = 0

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <meta ... />, <img ... />: the element, without content.
        if tag in _SKIPPED_ELEMENTS:
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if self._skip_depth:
            return
        if tag == "head":
            self._head_done = True
        elif tag == "title" and self._title_parts is not None:
            self.title = _clean("".join(self._title_parts)) or None
            self._title_parts = None
        elif tag == "p" or tag in _BLOCK_ELEMENTS:
            self._end_paragraph()

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._title_parts is not None:
            self._title_parts.append(data)
        if self._paragraph_parts is not None and self._paragraph_length < MAX_VALUE_CHARS:
            self._paragraph_parts.append(data)
            self._paragraph_length += len(data)

    def _meta(self, attrs: dict[str, str | None]) -> None:
        key = (attrs.get("property") or attrs.get("name") or "").strip().lower()
        content = attrs.get("content")
        if content is None or not (key.startswith(("og:", "twitter:")) or key == "description"):
            return
        if len(key) > MAX_KEY_CHARS or key in self.meta or len(self.meta) >= MAX_KEYS:
            return
        self.meta[key] = content

    def _img(self, attrs: dict[str, str | None]) -> None:
        src = (attrs.get("src") or "").strip()
        if self.image is not None or not src or src.lower().startswith("data:"):
            return
        for side in ("width", "height"):
            declared = _pixels(attrs.get(side))
            if declared is not None and declared < MIN_IMAGE_SIDE:
                return
        self.image = src

    def _end_paragraph(self) -> None:
        if self._paragraph_parts is None:
            return
        text = _clean("".join(self._paragraph_parts))
        self._paragraph_parts = None
        if text:
            self.paragraph = text


def _pixels(value: str | None) -> int | None:
    """A width/height attribute's number ("120", "120px"); None if absent or not one."""
    if value is None:
        return None
    match = re.match(r"\s*(\d+)", value)
    return int(match.group(1)) if match else None


def _clean(text: str) -> str:
    """Whitespace runs (newlines and indentation of the source) become one space."""
    return _WHITESPACE.sub(" ", text).strip()


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # End at a word boundary unless that would throw away most of the text.
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _http_url(value: str, base: str) -> str | None:
    """``value`` resolved against ``base``, if it is an http(s) URL of sane length."""
    try:
        resolved = urljoin(base, value.strip())
        parts = urlsplit(resolved)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return resolved if len(resolved) <= MAX_URL_CHARS else None


def _preview(parser: _PreviewParser, url: str) -> dict[str, Any]:
    preview: dict[str, Any] = {}
    for key, raw in parser.meta.items():
        if not key.startswith("og:"):
            continue
        value = _clean(raw)
        if key in _URL_KEYS:
            # Anything else (javascript:, data:, file:) is no use to a client, or worse.
            value = _http_url(value, url) or ""
        elif value:
            value = _cut(value, MAX_VALUE_CHARS)
        if value:
            preview[key] = value

    def fallback(key: str, *candidates: str | None, limit: int = MAX_VALUE_CHARS) -> None:
        if key in preview:
            return
        for candidate in candidates:
            value = _clean(candidate) if candidate is not None else ""
            if value:
                preview[key] = _cut(value, limit)
                return

    meta = parser.meta
    fallback("og:title", parser.title, meta.get("twitter:title"))
    fallback("og:description", meta.get("description"), meta.get("twitter:description"))
    fallback("og:description", parser.paragraph, limit=MAX_PARAGRAPH_CHARS)
    if "og:image" not in preview:
        for candidate in (
            preview.get("og:image:url"),
            preview.get("og:image:secure_url"),
            meta.get("twitter:image"),
            parser.image,
        ):
            image = _http_url(candidate, url) if candidate else None
            if image is not None:
                preview["og:image"] = image
                break
    return preview
