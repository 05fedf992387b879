"""Other servers' aliases and published room directories: ``GET /_matrix/federation/
v1/query/directory`` and ``GET``/``POST /_matrix/federation/v1/publicRooms``.

What comes back is checked before a client sees it: room IDs and server names must
be valid, the list of servers and the page are capped, and a directory entry that
is not one is left out.

spec: server-server-api.md#get_matrixfederationv1querydirectory (query.yaml),
#published-room-directory (public_rooms.yaml)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from federation.client.errors import FederationRequestError, FederationUnreachable
from federation.client.http import FederationHttpClient
from federation.queries.remote_errors import bad_gateway, remote_failure
from homeserver import errors
from homeserver.directory.handler import MAX_PAGE_SIZE, PublicRoomsPage
from homeserver.directory.listing import PublishedRoom
from homeserver.identifiers import is_valid_room_id, is_valid_server_name

DIRECTORY_PATH = "/_matrix/federation/v1/query/directory"
PUBLIC_ROOMS_PATH = "/_matrix/federation/v1/publicRooms"
QUERY_TIMEOUT_S = 10.0
PUBLIC_ROOMS_TIMEOUT_S = 30.0
#: Servers named for joining through: more than this is not useful to anyone.
MAX_SERVERS = 100
MAX_ALIAS_RESPONSE = 64 * 1024
MAX_PUBLIC_ROOMS_RESPONSE = 8 * 1024 * 1024
#: Longest text kept of a remote room's name, topic, alias or token.
MAX_TEXT = 4096


class RemoteDirectoryQuery:
    """Implements ``homeserver.directory.handler.RemoteDirectory``."""

    def __init__(self, *, client: FederationHttpClient) -> None:
        self._client = client

    async def resolve_remote_alias(self, alias: str) -> tuple[str, list[str]]:
        server = alias.partition(":")[2]
        try:
            body = await self._client.get_json(
                server,
                DIRECTORY_PATH,
                args={"room_alias": alias},
                timeout=QUERY_TIMEOUT_S,
                max_size=MAX_ALIAS_RESPONSE,
            )
        except (FederationRequestError, FederationUnreachable) as error:
            raise remote_failure(error, f"Room alias {alias}") from None
        room_id = body.get("room_id") if isinstance(body, dict) else None
        if not isinstance(room_id, str) or not is_valid_room_id(room_id):
            raise bad_gateway(f"{server} answered the alias query with no valid room ID")
        raw_servers = body.get("servers")
        servers = [
            name
            for name in (raw_servers if isinstance(raw_servers, list) else [])[:MAX_SERVERS]
            if isinstance(name, str) and is_valid_server_name(name)
        ]
        if not servers:
            # The alias's server knows the room, so it is at least one way in.
            servers = [server]
        return room_id, list(dict.fromkeys(servers))

    async def list_remote_public_rooms(
        self,
        server: str,
        *,
        limit: int | None,
        since: str | None,
        search_term: str | None,
        room_types: Sequence[str | None] | None,
        include_all_networks: bool,
        third_party_instance_id: str | None,
    ) -> PublicRoomsPage:
        if limit is not None and limit < 0:
            raise errors.invalid_param("limit must not be negative")
        page_size = min(limit, MAX_PAGE_SIZE) if limit else MAX_PAGE_SIZE
        try:
            if search_term is None and not room_types and not include_all_networks:
                args: dict[str, str] = {"limit": str(page_size)}
                if since is not None:
                    args["since"] = since
                if third_party_instance_id is not None:
                    args["third_party_instance_id"] = third_party_instance_id
                body = await self._client.get_json(
                    server,
                    PUBLIC_ROOMS_PATH,
                    args=args,
                    timeout=PUBLIC_ROOMS_TIMEOUT_S,
                    max_size=MAX_PUBLIC_ROOMS_RESPONSE,
                )
            else:
                request = _search_body(
                    page_size,
                    since,
                    search_term,
                    room_types,
                    include_all_networks,
                    third_party_instance_id,
                )
                try:
                    body = await self._client.post_json(
                        server,
                        PUBLIC_ROOMS_PATH,
                        request,
                        timeout=PUBLIC_ROOMS_TIMEOUT_S,
                        max_size=MAX_PUBLIC_ROOMS_RESPONSE,
                    )
                except FederationRequestError as error:
                    if not _is_unsupported(error):
                        raise
                    return await self._search_locally(server, search_term, room_types)
        except (FederationRequestError, FederationUnreachable) as error:
            raise remote_failure(error, "The room directory") from None
        if not isinstance(body, dict):
            raise bad_gateway(f"{server} answered /publicRooms with no JSON object")
        return parse_public_rooms(body, page_size)

    async def _search_locally(
        self, server: str, search_term: str | None, room_types: Sequence[str | None] | None
    ) -> PublicRoomsPage:
        """For a server that cannot filter (no ``POST /publicRooms``, as before
        Matrix 1.0's MSC2197): its first page, filtered here, with no pagination
        (as Synapse does)."""
        body = await self._client.get_json(
            server,
            PUBLIC_ROOMS_PATH,
            args={"limit": str(MAX_PAGE_SIZE)},
            timeout=PUBLIC_ROOMS_TIMEOUT_S,
            max_size=MAX_PUBLIC_ROOMS_RESPONSE,
        )
        if not isinstance(body, dict):
            raise bad_gateway(f"{server} answered /publicRooms with no JSON object")
        page = parse_public_rooms(body, MAX_PAGE_SIZE)
        needle = search_term.casefold() if search_term else None
        rooms = [
            room
            for room in page.rooms
            if (not room_types or room.room_type in room_types)
            and (needle is None or needle in _searchable(room))
        ]
        return PublicRoomsPage(rooms, None, None, page.total_room_count_estimate)


def _is_unsupported(error: FederationRequestError) -> bool:
    return error.status in (404, 405) or error.errcode == errors.Codes.UNRECOGNIZED


def _searchable(room: PublishedRoom) -> str:
    """What a search term is looked for in (as Synapse: name, topic, alias)."""
    return " ".join(
        text for text in (room.name, room.topic, room.canonical_alias) if text
    ).casefold()


def _search_body(
    limit: int,
    since: str | None,
    search_term: str | None,
    room_types: Sequence[str | None] | None,
    include_all_networks: bool,
    third_party_instance_id: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"limit": limit}
    if since is not None:
        body["since"] = since
    room_filter: dict[str, Any] = {}
    if search_term is not None:
        room_filter["generic_search_term"] = search_term
    if room_types:
        room_filter["room_types"] = list(room_types)
    if room_filter:
        body["filter"] = room_filter
    if include_all_networks:
        body["include_all_networks"] = True
    if third_party_instance_id is not None:
        body["third_party_instance_id"] = third_party_instance_id
    return body


def parse_public_rooms(body: dict[str, Any], page_size: int) -> PublicRoomsPage:
    """A remote ``/publicRooms`` answer as a page; entries that are not valid
    ``PublicRoomsChunk`` objects are dropped, and at most ``page_size`` kept."""
    raw_chunk = body.get("chunk")
    rooms = (
        [
            room
            for room in (_published_room(entry) for entry in (raw_chunk or [])[:page_size])
            if room is not None
        ]
        if isinstance(raw_chunk, list)
        else []
    )
    estimate = body.get("total_room_count_estimate")
    if type(estimate) is not int or estimate < 0:
        estimate = len(rooms)
    return PublicRoomsPage(
        rooms=rooms,
        next_batch=_short_text(body.get("next_batch")),
        prev_batch=_short_text(body.get("prev_batch")),
        total_room_count_estimate=estimate,
    )


def _published_room(entry: object) -> PublishedRoom | None:
    """spec: public_rooms_chunk.yaml; None unless the required keys are right."""
    if not isinstance(entry, dict):
        return None
    room_id = entry.get("room_id")
    members = entry.get("num_joined_members")
    world_readable = entry.get("world_readable")
    guest_can_join = entry.get("guest_can_join")
    if (
        not isinstance(room_id, str)
        or not is_valid_room_id(room_id)
        or type(members) is not int
        or members < 0
        or not isinstance(world_readable, bool)
        or not isinstance(guest_can_join, bool)
    ):
        return None
    join_rule = _short_text(entry.get("join_rule")) or "public"  # spec: the default
    return PublishedRoom(
        room_id=room_id,
        joined_members=members,
        name=_short_text(entry.get("name")),
        topic=_short_text(entry.get("topic")),
        avatar_url=_short_text(entry.get("avatar_url")),
        canonical_alias=_short_text(entry.get("canonical_alias")),
        join_rule=join_rule,
        # Only what the listing shows survives: world readable or not, guests or not.
        history_visibility="world_readable" if world_readable else "shared",
        guest_access="can_join" if guest_can_join else "forbidden",
        room_type=_short_text(entry.get("room_type")),
        federatable=True,
        listed=True,
        search_text="",
    )


def _short_text(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= MAX_TEXT and "\x00" not in value:
        return value
    return None
