"""The security headers of the web client's responses.

The Content-Security-Policy lets the app do exactly what it does: its own scripts
and the one inline theme script of ``index.html`` (allowed by its hash, computed
from the file being served), WebAssembly compilation for the Rust crypto
(``'wasm-unsafe-eval'``), requests and the WebSocket stream to any homeserver over
TLS (people may sign in to another server: "Other server", ``.well-known``
discovery) and to this one over plain HTTP too (local setups), images and media
only from this origin and blob:/data: URLs (media is fetched with the access token
and shown as blobs), and a service worker.  Nothing may frame the app (clickjacking).
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

#: ``<script>`` elements without ``src``: their text is what the hash covers.
_INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
#: A Host header fit to appear in the policy (host, IPv4, [IPv6], optional port).
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")

#: On every response of the app.
STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def inline_script_hashes(index_html: str) -> list[str]:
    """CSP sources (``'sha256-…'``) of each inline script of the page."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(index_html)
    ]


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(
    *, script_hashes: list[str], host: str | None, homeserver_url: str
) -> str:
    """The policy for a response to a request for ``host`` (its Host header)."""
    # Any homeserver over TLS: the client signs in wherever its user's account is.
    connect = ["'self'", "https:", "wss:"]
    if host is not None and _HOST.match(host):
        # 'self' covers ws: of the same host in current browsers; spelled out for
        # older ones that do not.
        connect.append(f"ws://{host}")
    homeserver = origin_of(homeserver_url)
    if homeserver is not None and homeserver.startswith("http://"):
        other_host = homeserver.removeprefix("http://")
        if other_host != host:
            # A plain-HTTP public_baseurl, the page reached by another name.
            connect += [homeserver, f"ws://{other_host}"]
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'wasm-unsafe-eval'", *script_hashes],
        # Components set style attributes (progress bars, positions).
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "blob:", "data:"],
        "media-src": ["'self'", "blob:", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": connect,
        "worker-src": ["'self'"],
        "manifest-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())
