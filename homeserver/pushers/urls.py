"""The ``data.url`` of a pusher: where the server will post (a push gateway, or a Web
Push subscription's endpoint), checked once for every kind that posts.

spec: data/api/client-server/pusher.yaml (``data.url``), MSC4174
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

from homeserver import errors


def checked_url(value: Any, *, missing: str) -> SplitResult:
    """``value`` as an http(s) URL with a host; 400 ``M_MISSING_PARAM`` (with the
    ``missing`` text) when absent, ``M_INVALID_PARAM`` when it is anything else."""
    if value is None:
        raise errors.missing_param(missing)
    if not isinstance(value, str):
        raise errors.invalid_param("'data.url' must be a string")
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        valid = False
    if not valid:
        raise errors.invalid_param("'data.url' must be an http(s) URL")
    return parts


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (RFC 6454): no userinfo, no path, and no
    port when it is the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if port is None or port == default:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"
