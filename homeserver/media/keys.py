"""Where each file lives in a storage backend: relative keys, one per file.

The layout is Synapse's media store layout (``local_content/ab/cd/efgh...``), so an
existing Synapse ``media_store_path`` (or S3 bucket written by its S3 storage
provider) can be served as it is.  Media IDs and server names are validated before
they get here (:mod:`homeserver.media.ids`), so a key never holds ``..`` or ``/``
from a request.
"""

from __future__ import annotations

from homeserver.config.media import ThumbnailMethod
from homeserver.media.records import ThumbnailRecord


def _split(media_id: str) -> str:
    if len(media_id) <= 4:
        # Too short to split (other servers may mint such IDs); a first component
        # of more than two characters cannot clash with a split one.
        return f"_short/{media_id}"
    return f"{media_id[0:2]}/{media_id[2:4]}/{media_id[4:]}"


def local_content(media_id: str) -> str:
    return f"local_content/{_split(media_id)}"


def local_thumbnail(
    media_id: str, width: int, height: int, content_type: str, method: ThumbnailMethod
) -> str:
    top, _, sub = content_type.partition("/")
    return f"local_thumbnails/{_split(media_id)}/{width}-{height}-{top}-{sub}-{method}"


def remote_content(server_name: str, media_id: str) -> str:
    return f"remote_content/{server_name}/{_split(media_id)}"


def remote_thumbnail(
    server_name: str,
    media_id: str,
    width: int,
    height: int,
    content_type: str,
    method: ThumbnailMethod,
) -> str:
    top, _, sub = content_type.partition("/")
    return (
        f"remote_thumbnail/{server_name}/{_split(media_id)}/{width}-{height}-{top}-{sub}-{method}"
    )


def thumbnail(origin: str, media_id: str, record: ThumbnailRecord, *, local: bool) -> str:
    """The key of a recorded thumbnail of ``origin``'s media (``local``: ours)."""
    method: ThumbnailMethod = "crop" if record.method == "crop" else "scale"
    if local:
        return local_thumbnail(media_id, record.width, record.height, record.content_type, method)
    return remote_thumbnail(
        origin, media_id, record.width, record.height, record.content_type, method
    )
