"""The files of the built web client (``web-client/dist``): which file a URL path
names, how it is typed and cached, and its body, gzipped or not.

Bodies are read (and gzipped once) on a thread and kept in memory, bounded by
:data:`CACHE_BYTES`: the whole app is a few megabytes, most of it the crypto
WebAssembly, and every client loads the same files.  A file that changes on disk
(a rebuild while the server runs) has a new size or mtime and so a new cache key.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from collections import OrderedDict
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

import attrs

#: Types the browser must get exactly (a wrong one and it refuses the file).
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
#: Worth gzipping: text and WebAssembly (which shrinks to about a third).
_COMPRESSIBLE = (
    "text/",
    "application/json",
    "application/manifest+json",
    "application/wasm",
    "image/svg+xml",
)
#: Vite's content-hashed output: a new build gets new names, so these never change.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Everything else (index.html, sw.js, the manifest, icons) is revalidated each time,
#: so a new build reaches people on their next load.
REVALIDATE = "no-cache"
#: In-memory bodies (plain and gzipped) kept at most; the least recently used go first.
CACHE_BYTES = 64 * 1024 * 1024
#: Smaller bodies gain nothing from gzip.
_MIN_GZIP = 512
_HASHED = re.compile(r"^assets/")


@attrs.frozen
class Asset:
    path: Path
    #: The URL path inside the app, without the leading slash ("index.html").
    name: str
    size: int
    mtime_ns: int
    content_type: str

    @property
    def cache_control(self) -> str:
        return IMMUTABLE if _HASHED.match(self.name) else REVALIDATE

    @property
    def compressible(self) -> bool:
        return self.size >= _MIN_GZIP and self.content_type.startswith(_COMPRESSIBLE)

    @property
    def etag(self) -> str:
        """A strong validator of this version of the file (size and mtime)."""
        digest = hashlib.sha256(f"{self.name}\0{self.size}\0{self.mtime_ns}".encode()).hexdigest()
        return f'"{digest[:24]}"'

    @property
    def last_modified(self) -> float:
        return self.mtime_ns / 1e9


def content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


class AppFiles:
    """The built app in ``root``; looked up per request, so a build made while the
    server runs is served without a restart."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: OrderedDict[tuple[str, int, int, bool], bytes] = OrderedDict()
        self._cached_bytes = 0

    @property
    def index(self) -> Asset | None:
        """``index.html``, or None while there is no build to serve."""
        return self.find("/index.html")

    def find(self, url_path: str) -> Asset | None:
        """The regular file ``url_path`` names inside the app; None for anything else
        (missing, a folder, outside the app through ``..`` or a symlink)."""
        try:
            relative = unquote(url_path, errors="strict").lstrip("/")
        except UnicodeDecodeError:
            return None
        if not relative or "\x00" in relative or "\\" in relative:
            return None
        parts = PurePosixPath(relative).parts
        if any(part in ("..", ".") or part.startswith(".") for part in parts):
            return None  # no traversal, and no dotfiles (.gitignore, editor files)
        try:
            path = (self.root / relative).resolve()
            if not path.is_relative_to(self.root):
                return None
            stat = path.stat()
        except (OSError, ValueError):
            return None
        if not path.is_file():
            return None
        return Asset(
            path=path,
            name=relative,
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            content_type=content_type(relative),
        )

    def cached_body(self, asset: Asset, gzipped: bool) -> bytes | None:
        key = (asset.name, asset.size, asset.mtime_ns, gzipped)
        body = self._cache.get(key)
        if body is not None:
            self._cache.move_to_end(key)
        return body

    def load_body(self, asset: Asset, gzipped: bool) -> bytes:
        """The file's bytes, gzipped if asked (from a ``.gz`` sibling written by the
        build when it is current).  Blocking: call it on a thread."""
        body: bytes | None = None
        if gzipped:
            sibling = asset.path.with_name(asset.path.name + ".gz")
            try:
                if sibling.stat().st_mtime_ns >= asset.mtime_ns:
                    body = sibling.read_bytes()
            except OSError:
                body = None
            if body is None:
                body = gzip.compress(asset.path.read_bytes(), compresslevel=9, mtime=0)
        else:
            body = asset.path.read_bytes()
        return body

    def remember(self, asset: Asset, gzipped: bool, body: bytes) -> None:
        """Keep ``body`` for the next request (if it fits in :data:`CACHE_BYTES`)."""
        if len(body) > CACHE_BYTES // 4:
            return
        key = (asset.name, asset.size, asset.mtime_ns, gzipped)
        if key in self._cache:
            return
        self._cache[key] = body
        self._cached_bytes += len(body)
        while self._cached_bytes > CACHE_BYTES:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= len(dropped)

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes


def precompress(root: Path) -> int:
    """Write a ``.gz`` beside every compressible file of a build; how many were
    written.  Run after ``vite build``, so the server never gzips on a request."""
    written = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix == ".gz":
            continue
        asset_type = content_type(path.name)
        if path.stat().st_size < _MIN_GZIP or not asset_type.startswith(_COMPRESSIBLE):
            continue
        target = path.with_name(path.name + ".gz")
        target.write_bytes(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))
        written += 1
    return written
