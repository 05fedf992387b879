"""Media administration, as Synapse's admin API serves it (so its admin tools work):
quarantine and release, delete, a user's uploads, purging the remote media cache.
Server admins only.

``POST /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}`` (and
``unquarantine``), ``GET``/``DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}``,
``GET /_synapse/admin/v1/users/{userId}/media``,
``POST /_synapse/admin/v1/purge_media_cache?before_ts=``.
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import query_int, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router
from homeserver.identifiers import is_valid_user_id
from homeserver.media.ids import is_valid_media_path
from homeserver.media.maintenance import MediaMaintenance
from homeserver.media.records import LocalMedia

_ADMIN = "/_synapse/admin/v1"


def register(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    maintenance: MediaMaintenance,
) -> None:
    async def require_admin(request: MatrixRequest) -> str:
        requester = await authenticator.requester(request)
        if not requester.is_admin:
            raise errors.forbidden("You are not a server admin")
        return requester.user_id

    async def quarantine(
        request: MatrixRequest, server_name: str, media_id: str
    ) -> tuple[int, Any]:
        admin = await require_admin(request)
        _check(server_name, media_id)
        await maintenance.quarantine(server_name, media_id, admin)
        return 200, {}

    async def unquarantine(
        request: MatrixRequest, server_name: str, media_id: str
    ) -> tuple[int, Any]:
        await require_admin(request)
        _check(server_name, media_id)
        await maintenance.quarantine(server_name, media_id, None)
        return 200, {}

    async def delete(request: MatrixRequest, server_name: str, media_id: str) -> tuple[int, Any]:
        await require_admin(request)
        _check(server_name, media_id)
        await maintenance.delete(server_name, media_id)
        return 200, {"deleted_media": [media_id], "total": 1}

    async def info(request: MatrixRequest, server_name: str, media_id: str) -> tuple[int, Any]:
        await require_admin(request)
        _check(server_name, media_id)
        media = await maintenance.local_media(server_name, media_id)
        return 200, {"media_info": _media_json(media)}

    async def user_media(request: MatrixRequest, user_id: str) -> tuple[int, Any]:
        await require_admin(request)
        if not is_valid_user_id(user_id):
            raise errors.invalid_param(f"{user_id!r} is not a valid user ID")
        offset = query_int(request, "from", 0) or 0
        limit = query_int(request, "limit", 100) or 0
        if offset < 0 or limit < 0:
            raise errors.invalid_param("'from' and 'limit' must not be negative")
        order_by = query_str(request, "order_by", "created_ts")
        if order_by != "created_ts":
            raise errors.invalid_param("Only order_by=created_ts is supported")
        direction = query_str(request, "dir", "f")
        if direction not in ("f", "b"):
            raise errors.invalid_param("'dir' must be 'f' or 'b'")
        page, total = await maintenance.list_user_media(
            user_id, offset=offset, limit=min(limit, 1000), newest_first=direction == "b"
        )
        body: dict[str, Any] = {"media": [_media_json(m) for m in page], "total": total}
        if offset + len(page) < total:
            body["next_token"] = offset + len(page)
        return 200, body

    async def purge_cache(request: MatrixRequest) -> tuple[int, Any]:
        await require_admin(request)
        before_ts = query_int(request, "before_ts")
        if before_ts is None:
            raise errors.missing_param("before_ts")
        if before_ts < 0:
            raise errors.invalid_param("'before_ts' must not be negative")
        return 200, {"deleted": await maintenance.purge_remote_cache(before_ts)}

    router.register("POST", f"{_ADMIN}/media/quarantine/{{server_name}}/{{media_id}}", quarantine)
    router.register(
        "POST", f"{_ADMIN}/media/unquarantine/{{server_name}}/{{media_id}}", unquarantine
    )
    router.register("GET", f"{_ADMIN}/media/{{server_name}}/{{media_id}}", info)
    router.register("DELETE", f"{_ADMIN}/media/{{server_name}}/{{media_id}}", delete)
    router.register("GET", f"{_ADMIN}/users/{{user_id}}/media", user_media)
    router.register("POST", f"{_ADMIN}/purge_media_cache", purge_cache)


def _check(server_name: str, media_id: str) -> None:
    if not is_valid_media_path(server_name, media_id):
        raise errors.not_found("Media not found")


def _media_json(media: LocalMedia) -> dict[str, Any]:
    return {
        "media_id": media.media_id,
        "media_type": media.content_type,
        "media_length": media.size,
        "upload_name": media.upload_name,
        "created_ts": media.created_ts,
        "last_access_ts": media.last_access_ts,
        "quarantined_by": media.quarantined_by,
        "safe_from_quarantine": False,
        "user_id": media.user_id,
        "width": media.width,
        "height": media.height,
    }
