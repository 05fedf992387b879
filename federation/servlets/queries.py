"""Queries other servers make of this one: ``/query/profile``, ``/query/directory``,
``/publicRooms`` (``GET`` and ``POST``), ``/hierarchy/{roomId}`` and (with no
X-Matrix signature: the caller is a third party's server holding a user's token)
``/openid/userinfo``.  The rules are in ``federation/queries/serving.py``.

spec: server-server-api.md#querying-for-information (data/api/server-server/
query.yaml), #published-room-directory (public_rooms.yaml), #spaces
(space_hierarchy.yaml), #openid (openid.yaml)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from federation.queries.serving import QueryServing
from federation.transport.server import FederationRequestAuthenticator
from homeserver import errors
from homeserver.api.client.directory import page_json, parse_public_rooms_filter
from homeserver.http.parsing import (
    check_room_id,
    optional_bool,
    optional_str,
    parse_optional_json_object,
    query_bool,
    query_int,
    query_str,
)
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router

_V1 = "/_matrix/federation/v1"

#: An OpenID access token's owner: ``homeserver.auth.openid.OpenIdTokens.user_of``
#: (None when the token is unknown or expired).
OpenIdUserLookup = Callable[[str], Awaitable[str | None]]


def register(
    router: Router,
    *,
    authenticator: FederationRequestAuthenticator,
    serving: QueryServing,
) -> None:
    async def query_profile(request: MatrixRequest) -> tuple[int, Any]:
        await authenticator.authenticate(request, None)
        user_id = query_str(request, "user_id")
        if user_id is None:
            raise errors.missing_param("user_id")
        return 200, await serving.profile(user_id, query_str(request, "field"))

    async def query_directory(request: MatrixRequest) -> tuple[int, Any]:
        await authenticator.authenticate(request, None)
        alias = query_str(request, "room_alias")
        if alias is None:
            raise errors.missing_param("room_alias")
        return 200, await serving.room_alias(alias)

    async def get_public_rooms(request: MatrixRequest) -> tuple[int, Any]:
        await authenticator.authenticate(request, None)
        page = await serving.public_rooms(
            limit=query_int(request, "limit"),
            since=query_str(request, "since"),
            include_all_networks=query_bool(request, "include_all_networks") or False,
            third_party_instance_id=query_str(request, "third_party_instance_id"),
        )
        return 200, page_json(page)

    async def post_public_rooms(request: MatrixRequest) -> tuple[int, Any]:
        body = parse_optional_json_object(request)
        await authenticator.authenticate(request, body)
        limit = body.get("limit")
        if limit is not None and type(limit) is not int:
            raise errors.bad_json("'limit' must be an integer")
        search_term, room_types = parse_public_rooms_filter(body.get("filter"))
        page = await serving.public_rooms(
            limit=limit,
            since=optional_str(body, "since"),
            search_term=search_term,
            room_types=room_types,
            include_all_networks=optional_bool(body, "include_all_networks", False),
            third_party_instance_id=optional_str(body, "third_party_instance_id"),
        )
        return 200, page_json(page)

    async def hierarchy(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        origin = await authenticator.authenticate(request, None)
        check_room_id(room_id)
        suggested_only = query_bool(request, "suggested_only") or False
        return 200, await serving.hierarchy(origin, room_id, suggested_only=suggested_only)

    router.register("GET", f"{_V1}/query/profile", query_profile)
    router.register("GET", f"{_V1}/query/directory", query_directory)
    router.register("GET", f"{_V1}/publicRooms", get_public_rooms)
    router.register("POST", f"{_V1}/publicRooms", post_public_rooms)
    router.register("GET", f"{_V1}/hierarchy/{{room_id}}", hierarchy)


def register_openid(router: Router, *, openid_user: OpenIdUserLookup) -> None:
    """``/openid/userinfo``: on listeners serving ``federation`` or ``openid``."""

    async def openid_userinfo(request: MatrixRequest) -> tuple[int, Any]:
        # spec: openid.yaml — no X-Matrix: the token itself is the credential.
        token = query_str(request, "access_token")
        if token is None:
            raise errors.missing_token()
        user_id = await openid_user(token)
        if user_id is None:
            raise errors.unknown_token()
        return 200, {"sub": user_id}

    router.register("GET", f"{_V1}/openid/userinfo", openid_userinfo)
