"""Media IDs and ``mxc://`` URIs.

spec: client-server-api/modules/content_repo.md#matrix-content-mxc-uris and
#content-repo-security-considerations: a media ID is only ``A-Za-z0-9_-``, and the
server name a valid server name, so neither can walk out of a storage path.
"""

from __future__ import annotations

import re
import secrets

from homeserver.identifiers import is_valid_server_name

_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")


def new_media_id() -> str:
    """A fresh random media ID: 144 bits, URL-safe base64 (24 characters)."""
    return secrets.token_urlsafe(18)


def is_valid_media_id(media_id: str) -> bool:
    return _MEDIA_ID.fullmatch(media_id) is not None


def is_valid_media_origin(server_name: str) -> bool:
    """A server name that can own media: valid by the grammar, and a real host (the
    grammar admits "." and "..", which would name no server and, as a directory of
    the remote cache, walk out of it)."""
    if not is_valid_server_name(server_name):
        return False
    if server_name.startswith("["):
        return True  # an IPv6 literal
    host = server_name.rsplit(":", 1)[0] if ":" in server_name else server_name
    return "" not in host.split(".")


def is_valid_media_path(server_name: str, media_id: str) -> bool:
    """Both parts of a media path (``/download/{serverName}/{mediaId}``) are valid."""
    return is_valid_media_origin(server_name) and is_valid_media_id(media_id)


def mxc_uri(server_name: str, media_id: str) -> str:
    return f"mxc://{server_name}/{media_id}"


def parse_mxc_uri(uri: str) -> tuple[str, str] | None:
    """``(server_name, media_id)`` of a well-formed ``mxc://`` URI, else None."""
    if not uri.startswith("mxc://"):
        return None
    server_name, slash, media_id = uri[len("mxc://") :].partition("/")
    if not slash or not is_valid_media_path(server_name, media_id):
        return None
    return server_name, media_id
