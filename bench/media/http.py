"""Media requests over aiohttp (the client-API benchmark's sessions: keep-alive).

- ``POST /_matrix/media/v3/upload?filename=…`` with the file as the body and its
  ``Content-Type``; the answer's ``content_uri``;
- ``GET /_matrix/client/v1/media/download/{serverName}/{mediaId}``;
- ``GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}?width=&height=&method=``.

Downloads are read as they arrive and only counted (hashed when asked), so the
client does not hold or copy whole files while timing.

spec: client-server-api/modules/content_repo.md
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

import aiohttp
import attrs

from bench.client_api.client import Account, RequestFailed

UPLOAD_PATH = "/_matrix/media/v3/upload"
MEDIA_PREFIX = "/_matrix/client/v1/media"


@attrs.frozen
class MediaId:
    server: str
    media_id: str

    @classmethod
    def parse(cls, uri: str) -> MediaId:
        if not uri.startswith("mxc://"):
            raise ValueError(f"not an mxc URI: {uri!r}")
        server, _, media_id = uri.removeprefix("mxc://").partition("/")
        if not server or not media_id:
            raise ValueError(f"not an mxc URI: {uri!r}")
        return cls(server, media_id)

    @property
    def path(self) -> str:
        return f"{quote(self.server, safe='')}/{quote(self.media_id, safe='')}"


@attrs.frozen
class Fetched:
    """What a download or thumbnail request got: its size and type, and (if asked
    for) its SHA-256 or the bytes themselves."""

    size: int
    content_type: str
    sha256: str | None = None
    body: bytes | None = None


class MediaClient:
    """Media requests as one user."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, account: Account) -> None:
        self.http = http
        self.base_url = base_url
        self.account = account
        self._headers = {"Authorization": f"Bearer {account.access_token}"}

    async def upload(self, data: bytes, content_type: str, filename: str) -> MediaId:
        headers = {**self._headers, "Content-Type": content_type}
        async with self.http.post(
            self.base_url + UPLOAD_PATH, data=data, headers=headers, params={"filename": filename}
        ) as response:
            raw = await response.read()
            if response.status != 200:
                raise RequestFailed("POST", UPLOAD_PATH, response.status, raw.decode("replace"))
        return MediaId.parse(str(json.loads(raw)["content_uri"]))

    async def download(self, media: MediaId, *, digest: bool = False) -> Fetched:
        return await self._get(f"{MEDIA_PREFIX}/download/{media.path}", None, digest=digest)

    async def thumbnail(
        self, media: MediaId, width: int, height: int, method: str, *, keep: bool = False
    ) -> Fetched:
        params = {"width": str(width), "height": str(height), "method": method}
        path = f"{MEDIA_PREFIX}/thumbnail/{media.path}"
        return await self._get(path, params, keep=keep)

    async def _get(
        self,
        path: str,
        params: dict[str, str] | None,
        *,
        digest: bool = False,
        keep: bool = False,
    ) -> Fetched:
        sha = hashlib.sha256() if digest else None
        kept: list[bytes] | None = [] if keep else None
        size = 0
        async with self.http.get(
            self.base_url + path, headers=self._headers, params=params
        ) as response:
            if response.status != 200:
                body = (await response.read()).decode("utf-8", "replace")
                raise RequestFailed("GET", path, response.status, body)
            content_type = response.headers.get("Content-Type", "")
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if sha is not None:
                    sha.update(chunk)
                if kept is not None:
                    kept.append(chunk)
        return Fetched(
            size=size,
            content_type=content_type,
            sha256=None if sha is None else sha.hexdigest(),
            body=None if kept is None else b"".join(kept),
        )
