"""Room aliases and the published room directory.

- ``/directory/room/{roomAlias}``: PUT (authenticated), GET (no token needed, as the
  spec gives no security for it), DELETE (authenticated).
- ``/rooms/{roomId}/aliases``: GET (authenticated).
- ``/directory/list/room/{roomId}``: GET (no token needed), PUT (authenticated).
- ``/publicRooms``: GET needs no token (the spec gives it no security; one that is
  sent must be valid), POST needs one (the spec requires it).

spec: client-server-api/_index.md#room-aliases, #published-room-directory,
data/api/client-server/directory.yaml, list_public_rooms.yaml,
definitions/public_rooms_chunk.yaml
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.directory.handler import PUBLIC, DirectoryHandler, PublicRoomsPage
from homeserver.directory.listing import PublishedRoom
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import (
    optional_bool,
    optional_str,
    parse_json_object,
    parse_optional_json_object,
    query_int,
    query_str,
    require_str,
)
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths


def register(
    router: Router, *, authenticator: RequestAuthenticator, directory: DirectoryHandler
) -> None:
    async def put_alias(request: MatrixRequest, room_alias: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        room_id = require_str(body, "room_id")
        await directory.create_alias(
            requester.user_id, room_alias, room_id, is_admin=requester.is_admin
        )
        return 200, {}

    async def get_alias(request: MatrixRequest, room_alias: str) -> tuple[int, Any]:
        room_id, servers = await directory.resolve_alias(room_alias)
        return 200, {"room_id": room_id, "servers": servers}

    async def delete_alias(request: MatrixRequest, room_alias: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        parse_optional_json_object(request)
        await directory.delete_alias(requester.user_id, requester.is_admin, room_alias)
        return 200, {}

    async def get_room_aliases(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        aliases = await directory.get_local_aliases(requester.user_id, requester.is_admin, room_id)
        return 200, {"aliases": aliases}

    async def get_visibility(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        return 200, {"visibility": await directory.get_visibility(room_id)}

    async def put_visibility(request: MatrixRequest, room_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        visibility = optional_str(body, "visibility")
        if visibility is None:
            visibility = PUBLIC  # spec: defaults to public
        await directory.change_visibility(
            requester.user_id, requester.is_admin, room_id, visibility
        )
        return 200, {}

    async def get_public_rooms(request: MatrixRequest) -> tuple[int, Any]:
        await authenticator.optional_requester(request)
        page = await directory.list_public_rooms(
            server=query_str(request, "server"),
            limit=query_int(request, "limit"),
            since=query_str(request, "since"),
        )
        return 200, page_json(page)

    async def post_public_rooms(request: MatrixRequest) -> tuple[int, Any]:
        await authenticator.requester(request)
        body = parse_optional_json_object(request)
        search_term, room_types = parse_public_rooms_filter(body.get("filter"))
        page = await directory.list_public_rooms(
            server=query_str(request, "server"),
            limit=_optional_int(body, "limit"),
            since=optional_str(body, "since"),
            search_term=search_term,
            room_types=room_types,
            include_all_networks=optional_bool(body, "include_all_networks", False),
            third_party_instance_id=optional_str(body, "third_party_instance_id"),
        )
        return 200, page_json(page)

    for path in client_paths("/directory/room/{room_alias}"):
        router.register("PUT", path, put_alias)
        router.register("GET", path, get_alias)
        router.register("DELETE", path, delete_alias)
    for path in client_paths("/rooms/{room_id}/aliases"):
        router.register("GET", path, get_room_aliases)
    for path in client_paths("/directory/list/room/{room_id}"):
        router.register("GET", path, get_visibility)
        router.register("PUT", path, put_visibility)
    for path in client_paths("/publicRooms"):
        router.register("GET", path, get_public_rooms)
        router.register("POST", path, post_public_rooms)


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (type(value) is not int):
        raise errors.bad_json(f"{key!r} must be an integer")
    return value


def parse_public_rooms_filter(value: object) -> tuple[str | None, list[str | None] | None]:
    """``filter``'s ``generic_search_term`` and ``room_types``, type-checked."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise errors.bad_json("'filter' must be an object")
    search_term = optional_str(value, "generic_search_term")
    if search_term is not None and "\x00" in search_term:
        raise errors.invalid_param("generic_search_term must not contain NUL")
    room_types = value.get("room_types")
    if room_types is None:
        return search_term, None
    if not isinstance(room_types, list) or not all(
        item is None or isinstance(item, str) for item in room_types
    ):
        raise errors.bad_json("'room_types' must be a list of strings and nulls")
    if any(item is not None and "\x00" in item for item in room_types):
        raise errors.invalid_param("room_types must not contain NUL")
    return search_term, room_types


def chunk_json(room: PublishedRoom) -> dict[str, Any]:
    """One entry of ``chunk``; optional keys are left out when the room has no value."""
    entry: dict[str, Any] = {
        "room_id": room.room_id,
        "num_joined_members": room.joined_members,
        "world_readable": room.history_visibility == "world_readable",
        "guest_can_join": room.guest_access == "can_join",
        "join_rule": room.join_rule,
    }
    optional = {
        "name": room.name,
        "topic": room.topic,
        "avatar_url": room.avatar_url,
        "canonical_alias": room.canonical_alias,
        "room_type": room.room_type,
    }
    entry.update({key: value for key, value in optional.items() if value is not None})
    return entry


def page_json(page: PublicRoomsPage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "chunk": [chunk_json(room) for room in page.rooms],
        "total_room_count_estimate": page.total_room_count_estimate,
    }
    if page.next_batch is not None:
        body["next_batch"] = page.next_batch
    if page.prev_batch is not None:
        body["prev_batch"] = page.prev_batch
    return body
