"""Filters: ``POST /user/{userId}/filter`` and ``GET /user/{userId}/filter/{filterId}``.

Only the user themself may upload or download their filters (403 otherwise); an
unknown filter, or one of another user's, is 404.

spec: client-server-api/_index.md#filtering, #post_matrixclientv3useruseridfilter,
#get_matrixclientv3useruseridfilterfilterid
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.filtering.handler import FilterHandler
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths


def register(
    router: Router, *, authenticator: RequestAuthenticator, filters: FilterHandler
) -> None:
    async def create_filter(request: MatrixRequest, user_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        if requester.user_id != user_id:
            raise errors.forbidden("You may only create filters for yourself")
        body = parse_json_object(request)
        return 200, {"filter_id": await filters.create(user_id, body)}

    async def get_filter(request: MatrixRequest, user_id: str, filter_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        if requester.user_id != user_id:
            raise errors.forbidden("You may only download your own filters")
        return 200, await filters.get(user_id, filter_id)

    for path in client_paths("/user/{user_id}/filter"):
        router.register("POST", path, create_filter)
    for path in client_paths("/user/{user_id}/filter/{filter_id}"):
        router.register("GET", path, get_filter)
