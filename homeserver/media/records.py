"""The media repository's records, shared by its store and its handlers (and the
admin servlet that shows them).  Imports nothing else from the server."""

from __future__ import annotations

import attrs


@attrs.frozen
class LocalMedia:
    media_id: str
    user_id: str
    created_ts: int
    #: None while a ``/create``d ID still waits for its bytes.
    uploaded_ts: int | None
    expires_ts: int | None
    content_type: str | None
    upload_name: str | None
    size: int | None
    sha256: str | None
    width: int | None
    height: int | None
    quarantined_by: str | None
    url_cache: str | None
    last_access_ts: int | None = None
    duration_ms: int | None = None


@attrs.frozen
class RemoteMedia:
    origin: str
    media_id: str
    content_type: str | None
    upload_name: str | None
    size: int
    sha256: str | None
    width: int | None
    height: int | None
    created_ts: int
    last_access_ts: int
    quarantined_by: str | None


@attrs.frozen
class ThumbnailRecord:
    width: int
    height: int
    method: str
    content_type: str
    size: int
    animated: bool


@attrs.frozen
class UploadedFile:
    """What an upload left in the backend."""

    content_type: str
    upload_name: str | None
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
