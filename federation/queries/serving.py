"""What this server tells other servers that ask: its users' profiles, its aliases,
its published room directory and the space hierarchy under one of its rooms.

Each answer comes from the same handler a local client's request goes through, with
the rules for a server instead of a user: only local users and aliases are
answered for, the directory only when ``allow_public_rooms_over_federation``, and a
hierarchy only of rooms the asking server may see (and whose server ACL admits it).

spec: server-server-api.md#querying-for-information (query.yaml),
#published-room-directory (public_rooms.yaml), #spaces (space_hierarchy.yaml)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from federation.protocols import JoinedServers, ServerAclCheck
from homeserver import errors
from homeserver.directory.handler import DirectoryHandler, PublicRoomsPage
from homeserver.identifiers import UserID
from homeserver.profile.handler import ProfileHandler
from homeserver.rooms.hierarchy import SpaceHierarchyHandler

PROFILE_FIELDS = ("displayname", "avatar_url")


class QueryServing:
    def __init__(
        self,
        *,
        server_name: str,
        profiles: ProfileHandler,
        directory: DirectoryHandler,
        hierarchy: SpaceHierarchyHandler,
        joined_servers: JoinedServers,
        acl: ServerAclCheck,
        allow_public_rooms: bool,
    ) -> None:
        self._server_name = server_name
        self._profiles = profiles
        self._directory = directory
        self._hierarchy = hierarchy
        self._joined_servers = joined_servers
        self._acl = acl
        self._allow_public_rooms = allow_public_rooms

    async def profile(self, user_id: str, field: str | None) -> dict[str, Any]:
        """spec: #get_matrixfederationv1queryprofile — 404 for unknown users, 400 for
        users of other servers.  Any ``field`` may be asked for (servers may define
        their own); one this server does not keep is simply absent: ``{}``."""
        try:
            domain = UserID.parse(user_id).domain
        except ValueError:
            raise errors.invalid_param("Invalid user ID") from None
        if domain != self._server_name:
            raise errors.invalid_param("User is not hosted on this homeserver")
        profile = await self._profiles.get_local_profile(user_id)
        body: dict[str, Any] = {}
        if field is not None and field not in PROFILE_FIELDS:
            return body
        if profile.displayname is not None and field in (None, "displayname"):
            body["displayname"] = profile.displayname
        if profile.avatar_url is not None and field in (None, "avatar_url"):
            body["avatar_url"] = profile.avatar_url
        return body

    async def room_alias(self, alias: str) -> dict[str, Any]:
        """spec: #get_matrixfederationv1querydirectory — the room and the servers in
        it, ours first (404 for unknown aliases and other servers' ones)."""
        room_id, servers = await self._directory.resolve_local_alias(alias)
        joined = await self._joined_servers.get_joined_servers(room_id)
        return {"room_id": room_id, "servers": list(dict.fromkeys([*servers, *sorted(joined)]))}

    async def public_rooms(
        self,
        *,
        limit: int | None,
        since: str | None,
        search_term: str | None = None,
        room_types: Sequence[str | None] | None = None,
        include_all_networks: bool = False,
        third_party_instance_id: str | None = None,
    ) -> PublicRoomsPage:
        """Our directory, if the operator shares it (403 ``M_FORBIDDEN`` if not, as
        Synapse answers)."""
        if not self._allow_public_rooms:
            raise errors.forbidden("This server does not share its room directory")
        return await self._directory.list_public_rooms(
            limit=limit,
            since=since,
            search_term=search_term,
            room_types=room_types,
            include_all_networks=include_all_networks,
            third_party_instance_id=third_party_instance_id,
            for_federation=True,
        )

    async def hierarchy(self, origin: str, room_id: str, *, suggested_only: bool) -> dict[str, Any]:
        """spec: #get_matrixfederationv1hierarchyroomid — 404 for rooms unknown here or
        that ``origin`` may not see; 403 if the room's server ACL denies it."""
        await self._acl.check(origin, room_id)
        return await self._hierarchy.server_hierarchy(
            origin, room_id, suggested_only=suggested_only, joined_servers=self._joined_servers
        )
