"""Room aliases and the published room directory (rules only).

- Aliases: only aliases on this server's domain are created and stored here;
  another server's alias is resolved by asking that server, and another server's
  directory is listed by asking it, through a :class:`RemoteDirectory` (federation's
  ``/query/directory`` and ``/publicRooms``) once federation has handed one over
  (:meth:`DirectoryHandler.use_remote_directory`); 404 while there is none.
- Who may do what (the spec leaves it to servers; these follow Synapse's defaults):
  creating an alias needs membership of the room (server admins excepted);
  deleting one is allowed to its creator, server admins, and joined members who may
  send ``m.room.canonical_alias``; changing a room's directory visibility is allowed
  to server admins and joined members who may send ``m.room.canonical_alias``;
  listing a room's local aliases needs membership unless the room is world readable.
- The directory keeps one summary row per published room, refreshed by
  :meth:`DirectoryHandler.on_state_changed` (called for every state event) and on
  publishing, so listing never reads room state.  Refreshes of one room run one at a
  time, each from the room's state at that moment, so the last one wins.

spec: client-server-api/_index.md#room-aliases, #published-room-directory,
data/api/client-server/directory.yaml, list_public_rooms.yaml
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Protocol

import attrs

from homeserver import errors
from homeserver.clock import Clock
from homeserver.directory.listing import ListingPosition, PublishedRoom
from homeserver.directory.summary import (
    HISTORY_VISIBILITY,
    SUMMARY_STATE,
    normalise_search,
    summarise_room,
)
from homeserver.directory.tokens import PageToken, decode_token, encode_token
from homeserver.errors import Codes, MatrixError
from homeserver.events.auth import get_user_power_level, membership_in, required_power_level
from homeserver.events.room_versions import get_room_version
from homeserver.identifiers import is_valid_room_alias, is_valid_room_id, is_valid_server_name
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.directory import DirectoryStore
from homeserver.storage.events import RoomRecord
from homeserver.storage.timeline import TimelineStore
from homeserver.util.linearizer import Linearizer

logger = logging.getLogger(__name__)

#: ``(deleter user ID, room ID, alias)``, after an alias was deleted.
AliasDeletedCallback = Callable[[str, str, str], Awaitable[None]]

PUBLIC = "public"
PRIVATE = "private"
VISIBILITIES = (PUBLIC, PRIVATE)

#: Most rooms one page of the directory holds; also the page size when the client
#: gives no limit (or 0).
MAX_PAGE_SIZE = 500

_CREATE = ("m.room.create", "")
_POWER_LEVELS = ("m.room.power_levels", "")
_CANONICAL_ALIAS_TYPE = "m.room.canonical_alias"


@attrs.frozen
class PublicRoomsPage:
    rooms: list[PublishedRoom]
    next_batch: str | None
    prev_batch: str | None
    total_room_count_estimate: int


class RemoteDirectory(Protocol):
    """Other servers' aliases and room directories (federation/queries)."""

    async def resolve_remote_alias(self, alias: str) -> tuple[str, list[str]]:
        """``(room_id, servers)`` from the alias's server: 404 ``M_NOT_FOUND`` if it
        knows no such alias, 502 if it cannot be asked."""

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
        """One page of ``server``'s published room directory (502 if it cannot be
        asked; its own error status if it refuses)."""


class DirectoryHandler:
    def __init__(
        self,
        *,
        server_name: str,
        clock: Clock,
        directory: DirectoryStore,
        rooms: RoomStateReader,
        timeline: TimelineStore,
    ) -> None:
        self._server_name = server_name
        self._clock = clock
        self._store = directory
        self._rooms = rooms
        self._timeline = timeline
        self._refresh_linearizer = Linearizer()
        #: Called with ``(deleter, room_id, alias)`` after a local alias is deleted.
        self.on_alias_deleted: list[AliasDeletedCallback] = []
        #: Other servers' aliases and directories; None: this server does not federate.
        self._remote: RemoteDirectory | None = None

    def use_remote_directory(self, remote: RemoteDirectory) -> None:
        """Resolve other servers' aliases and list their directories through
        ``remote`` (federation is built after the homeserver's handlers:
        federation/assembly.py calls this)."""
        self._remote = remote

    # --- aliases -------------------------------------------------------------------

    async def create_alias(
        self,
        requester_user_id: str,
        alias: str,
        room_id: str,
        *,
        check_can_create: bool = True,
        is_admin: bool = False,
    ) -> None:
        """Map the local ``alias`` to ``room_id``.

        400 ``M_INVALID_PARAM`` for an invalid or non-local alias or an invalid room
        ID; 409 ``M_UNKNOWN`` if the alias exists.  With ``check_can_create`` the room
        must exist here (404) and the requester must be joined to it unless
        ``is_admin`` (403); without it (``/createRoom``) neither is checked.
        """
        self._check_local_alias(alias)
        if not is_valid_room_id(room_id):
            raise errors.invalid_param("Invalid room ID")
        if check_can_create:
            await self._room_or_404(room_id)
            if not is_admin and not await self._timeline.is_joined(requester_user_id, room_id):
                raise errors.forbidden("You must be in the room to create an alias for it")
        created = await self._store.create_alias(
            alias, room_id, requester_user_id, self._clock.time_msec()
        )
        if not created:
            raise MatrixError(
                HTTPStatus.CONFLICT, Codes.UNKNOWN, f"Room alias {alias} already exists."
            )

    async def resolve_alias(self, alias: str) -> tuple[str, list[str]]:
        """``(room_id, servers)`` for ``alias``; 404 ``M_NOT_FOUND`` if it is unknown.

        Another server's alias is asked of that server (404 while this server does
        not federate), which also names the servers to join through.  For a local
        alias ``servers`` is this server only: it is the one that knows the alias.
        """
        if not is_valid_room_alias(alias):
            raise errors.invalid_param("Room alias invalid")
        if not self._is_local_alias(alias):
            if self._remote is None:
                raise errors.not_found(f"Room alias {alias} not found.")
            return await self._remote.resolve_remote_alias(alias)
        return await self.resolve_local_alias(alias)

    async def resolve_local_alias(self, alias: str) -> tuple[str, list[str]]:
        """:meth:`resolve_alias` for aliases of this server only (what other servers
        are told); 404 ``M_NOT_FOUND`` for any other alias."""
        if not is_valid_room_alias(alias):
            raise errors.invalid_param("Room alias invalid")
        mapping = await self._store.get_alias(alias) if self._is_local_alias(alias) else None
        if mapping is None:
            raise errors.not_found(f"Room alias {alias} not found.")
        return mapping.room_id, [self._server_name]

    async def delete_alias(self, requester_user_id: str, is_admin: bool, alias: str) -> None:
        """Remove a local alias: for its creator, server admins, and joined members who
        may send ``m.room.canonical_alias`` (403 for anyone else, 404 if unknown)."""
        if not is_valid_room_alias(alias):
            raise errors.invalid_param("Room alias invalid")
        mapping = await self._store.get_alias(alias) if self._is_local_alias(alias) else None
        if mapping is None:
            raise errors.not_found(f"Room alias {alias} not found.")
        if not (
            is_admin
            or mapping.creator == requester_user_id
            or await self._may_edit_canonical_alias(mapping.room_id, requester_user_id)
        ):
            raise errors.forbidden("You don't have permission to delete the alias.")
        if not await self._store.delete_alias(alias):
            raise errors.not_found(f"Room alias {alias} not found.")
        for callback in self.on_alias_deleted:
            # The alias is gone whatever a listener makes of it (Synapse likewise only
            # logs a failed canonical-alias update).
            try:
                await callback(requester_user_id, mapping.room_id, alias)
            except Exception:
                logger.error("alias deletion listener failed for %s", alias, exc_info=True)

    async def get_local_aliases(
        self, requester_user_id: str, is_admin: bool, room_id: str
    ) -> list[str]:
        """The room's aliases on this server, for its members (or anyone if it is world
        readable, or server admins); 403 otherwise, unknown rooms included."""
        if not is_valid_room_id(room_id):
            raise errors.invalid_param("Invalid room ID")
        if not is_admin:
            room = await self._rooms.room(room_id)
            if room is None:
                raise errors.forbidden("You are not a member of the room.")
            state = await self._rooms.current_state(
                room, [("m.room.member", requester_user_id), HISTORY_VISIBILITY]
            )
            history = state.get(HISTORY_VISIBILITY)
            world_readable = (
                history is not None
                and history.content.get("history_visibility") == "world_readable"
            )
            if membership_in(state, requester_user_id) != "join" and not world_readable:
                raise errors.forbidden("You are not a member of the room.")
        return await self._store.get_aliases_for_room(room_id)

    # --- visibility in the published room directory ------------------------------

    async def get_visibility(self, room_id: str) -> str:
        """``"public"`` or ``"private"``; 404 ``M_NOT_FOUND`` for unknown rooms."""
        await self._room_or_404(room_id)
        return PUBLIC if await self._store.is_published(room_id) else PRIVATE

    async def set_visibility(self, room_id: str, visibility: str) -> None:
        """Publish (``"public"``) or unpublish (``"private"``) a room, unconditionally.

        400 ``M_INVALID_PARAM`` for another value, 404 for unknown rooms.
        """
        if visibility not in VISIBILITIES:
            raise errors.invalid_param("visibility must be 'public' or 'private'")
        room = await self._room_or_404(room_id)
        async with self._refresh_linearizer.queue(room_id):
            if visibility == PUBLIC:
                await self._store.publish_room(await self._summarise(room))
            else:
                await self._store.unpublish_room(room_id)

    async def change_visibility(
        self, requester_user_id: str, is_admin: bool, room_id: str, visibility: str
    ) -> None:
        """:meth:`set_visibility` for a client: server admins and joined members who may
        send ``m.room.canonical_alias`` (403 for anyone else)."""
        if visibility not in VISIBILITIES:
            raise errors.invalid_param("visibility must be 'public' or 'private'")
        await self._room_or_404(room_id)
        if not is_admin and not await self._may_edit_canonical_alias(room_id, requester_user_id):
            raise errors.forbidden(
                "You need the power to change the room's canonical alias to publish it"
            )
        await self.set_visibility(room_id, visibility)

    async def transfer_to_successor(self, old_room_id: str, new_room_id: str) -> list[str]:
        """A room upgrade: the old room's local aliases now name the new room, and if
        the old room was published the new one takes its place in the directory.
        Returns the aliases moved.  The caller has checked the upgrader's power.

        spec: client-server-api/modules/room_upgrades.md ("Moves any local aliases to
        the new room"); the directory swap is what Synapse does.
        """
        moved = await self._store.move_aliases(old_room_id, new_room_id)
        if await self._store.is_published(old_room_id):
            await self.set_visibility(new_room_id, PUBLIC)
            await self.set_visibility(old_room_id, PRIVATE)
        return moved

    async def on_state_changed(self, room_id: str) -> None:
        """Refresh a published room's summary after a change to its state.

        Await it before answering the request that changed the state, so the sender
        sees the change in the directory.  It never raises: the event is stored
        whatever happens here, so a failure is logged (the next change retries).
        """
        try:
            async with self._refresh_linearizer.queue(room_id):
                if not await self._store.is_published(room_id):
                    return
                room = await self._rooms.room(room_id)
                if room is None:
                    return
                await self._store.update_published_room(await self._summarise(room))
        except Exception:
            logger.error("could not refresh the directory entry of %s", room_id, exc_info=True)

    # --- listing -------------------------------------------------------------------

    async def list_public_rooms(
        self,
        *,
        server: str | None = None,
        limit: int | None = None,
        since: str | None = None,
        search_term: str | None = None,
        room_types: Sequence[str | None] | None = None,
        include_all_networks: bool = False,
        third_party_instance_id: str | None = None,
        for_federation: bool = False,
    ) -> PublicRoomsPage:
        """One page of the directory, most joined members first, then by room ID.

        ``for_federation``: the page another server asked for, without the rooms
        created with ``m.federate: false`` (in the count too) -- that server could
        not join them, and their existence is not its business.

        ``limit`` None or 0 means :data:`MAX_PAGE_SIZE`, larger values are capped to
        it, negative ones are 400.  An empty ``room_types`` means no filter (as
        Synapse).  Rooms published for an application service network
        (``third_party_instance_id``) do not exist yet, so asking for one lists
        nothing.  Another server's directory is asked of that server (404 while this
        server does not federate).
        """
        if server is not None and server != self._server_name:
            if not is_valid_server_name(server):
                raise errors.invalid_param("Invalid server name")
            if self._remote is None:
                raise errors.not_found(f"Cannot fetch the room directory of {server}")
            return await self._remote.list_remote_public_rooms(
                server,
                limit=limit,
                since=since,
                search_term=search_term,
                room_types=room_types,
                include_all_networks=include_all_networks,
                third_party_instance_id=third_party_instance_id,
            )
        if limit is not None and limit < 0:
            raise errors.invalid_param("limit must not be negative")
        page_size = min(limit, MAX_PAGE_SIZE) if limit else MAX_PAGE_SIZE
        if include_all_networks and third_party_instance_id is not None:
            raise errors.invalid_param(
                "third_party_instance_id cannot be used with include_all_networks"
            )
        token = decode_token(since) if since else None
        total = await self._store.count_listed_rooms(federatable_only=for_federation)
        if third_party_instance_id is not None:
            return PublicRoomsPage([], None, None, total)
        search = normalise_search(search_term) if search_term else None
        types = list(room_types) if room_types else None
        if token is None or token.forward:
            rooms, more = await self._store.list_published_rooms(
                limit=page_size,
                after=token.position if token else None,
                search=search,
                room_types=types,
                federatable_only=for_federation,
            )
            has_next, has_prev = more, token is not None
        else:
            rooms, more = await self._store.list_published_rooms(
                limit=page_size,
                before=token.position,
                search=search,
                room_types=types,
                federatable_only=for_federation,
            )
            has_next, has_prev = True, more
        next_batch = prev_batch = None
        if rooms and has_next:
            next_batch = encode_token(PageToken(_position(rooms[-1]), forward=True))
        if rooms and has_prev:
            prev_batch = encode_token(PageToken(_position(rooms[0]), forward=False))
        return PublicRoomsPage(rooms, next_batch, prev_batch, total)

    # --- helpers -------------------------------------------------------------------

    def _is_local_alias(self, alias: str) -> bool:
        return alias.partition(":")[2] == self._server_name

    def _check_local_alias(self, alias: str) -> None:
        if not is_valid_room_alias(alias):
            raise errors.invalid_param("Room alias invalid")
        if not self._is_local_alias(alias):
            raise errors.invalid_param(f"Room aliases must be on this server ({self._server_name})")

    async def _room_or_404(self, room_id: str) -> RoomRecord:
        room = await self._rooms.room(room_id) if is_valid_room_id(room_id) else None
        if room is None:
            raise errors.not_found("Room not found")
        return room

    async def _may_edit_canonical_alias(self, room_id: str, user_id: str) -> bool:
        """Whether ``user_id`` is joined and may send ``m.room.canonical_alias``."""
        room = await self._rooms.room(room_id)
        if room is None:
            return False
        state = await self._rooms.current_state(
            room, [_CREATE, _POWER_LEVELS, ("m.room.member", user_id)]
        )
        if membership_in(state, user_id) != "join":
            return False
        room_version = get_room_version(room.room_version)
        needed = required_power_level(room_version, _CANONICAL_ALIAS_TYPE, "", state)
        return get_user_power_level(room_version, user_id, state) >= needed

    async def _summarise(self, room: RoomRecord) -> PublishedRoom:
        state = await self._rooms.current_state(room, SUMMARY_STATE)
        joined = await self._timeline.count_joined_members(room.room_nid)
        return summarise_room(room.room_id, state, joined)


def _position(room: PublishedRoom) -> ListingPosition:
    return ListingPosition(room.joined_members, room.room_id)
