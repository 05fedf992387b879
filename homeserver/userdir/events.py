"""What the user directory takes from the events stream (the ``user_directory``
consumer): which rooms are public, and the profiles of remote users.

Rooms: after an ``m.room.join_rules`` or ``m.room.history_visibility`` event, the
room's *current* state decides (the event may have lost state resolution).

Remote users (local users are indexed from their global profile instead): their
profile is what their latest join event to a room that was public at the time says
(the state before the join).  A name set only for a private room is not shown to
everyone sharing a public room with them: a join to a private room indexes the user
without a profile, unless they are indexed already.  When a remote user leaves (or
is kicked or banned) and is joined to no room here any more, they are removed.
Handling a batch twice writes the same rows: the consumer delivers at least once.

spec: client-server-api/_index.md#post_matrixclientv3user_directorysearch (users in
rooms with a ``public`` join rule or ``world_readable`` history visibility)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeGuard

from homeserver.events.event import Event, StateKey
from homeserver.identifiers import UserID, is_valid_user_id
from homeserver.profile.handler import MAX_AVATAR_URL_LENGTH, MAX_DISPLAYNAME_LENGTH
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.user_directory import UserDirectoryStore
from homeserver.streams.consumer import StreamedEvent
from homeserver.userdir.handler import directory_entry
from homeserver.userdir.records import DirectoryEntry

JOIN_RULES = ("m.room.join_rules", "")
HISTORY_VISIBILITY = ("m.room.history_visibility", "")


class DirectoryEventHandler:
    def __init__(
        self, *, server_name: str, store: UserDirectoryStore, state: RoomStateReader
    ) -> None:
        self._server_name = server_name
        self._store = store
        self._state = state

    async def handle(self, batch: Sequence[StreamedEvent]) -> None:
        rooms: dict[str, None] = {}
        # Per remote user, in stream order: their profile as joins to public rooms
        # show it, and the users seen joining only private rooms.
        profiles: dict[str, DirectoryEntry] = {}
        nameless: dict[str, DirectoryEntry] = {}
        departed: dict[str, None] = {}
        public_before: dict[int | None, bool] = {}
        for streamed in batch:
            event = streamed.event
            if not event.is_state() or event.rejected:
                continue
            if event.state_key_tuple in (JOIN_RULES, HISTORY_VISIBILITY):
                rooms.setdefault(event.room_id, None)
            elif event.type == "m.room.member" and self._is_remote(event.state_key or ""):
                user_id = event.state_key or ""
                if event.content.get("membership") != "join":
                    departed[user_id] = None
                    continue
                group = event.internal.state_group_before
                if group not in public_before:
                    public_before[group] = await self._public_at(event)
                if public_before[group]:
                    profiles[user_id] = _remote_entry(user_id, event.content)
                else:
                    nameless[user_id] = _remote_entry(user_id, {})
        for room_id in rooms:
            await self._refresh_room(room_id)
        await self._store.upsert(list(profiles.values()))
        await self._store.insert_missing([e for u, e in nameless.items() if u not in profiles])
        # Checked against current memberships, so a later rejoin (in this batch or
        # already stored) keeps them.
        await self._store.remove_roomless_remote_users(list(departed))

    async def _refresh_room(self, room_id: str) -> None:
        room = await self._state.room(room_id)
        if room is None:
            return
        state = await self._state.current_state(room, [JOIN_RULES, HISTORY_VISIBILITY])
        await self._store.set_room_public(room.room_nid, _public(state))

    async def _public_at(self, event: Event) -> bool:
        """Whether the room was public just before ``event``."""
        group = event.internal.state_group_before
        ids = await self._state.state_ids_for_keys(group, [JOIN_RULES, HISTORY_VISIBILITY])
        return _public(await self._state.events_for_state(ids))

    def _is_remote(self, user_id: str) -> bool:
        return is_valid_user_id(user_id) and UserID.parse(user_id).domain != self._server_name


def _public(state: dict[StateKey, Event]) -> bool:
    join_rules = state.get(JOIN_RULES)
    visibility = state.get(HISTORY_VISIBILITY)
    return (join_rules is not None and join_rules.content.get("join_rule") == "public") or (
        visibility is not None and visibility.content.get("history_visibility") == "world_readable"
    )


def _remote_entry(user_id: str, content: dict[str, object]) -> DirectoryEntry:
    name = content.get("displayname")
    avatar = content.get("avatar_url")
    return directory_entry(
        user_id,
        name if _storable(name, MAX_DISPLAYNAME_LENGTH) else None,
        avatar if _storable(avatar, MAX_AVATAR_URL_LENGTH, "mxc://") else None,
        is_local=False,
    )


def _storable(value: object, max_length: int, prefix: str = "") -> TypeGuard[str]:
    """A profile field from another server that is worth indexing (and that the
    database accepts: no NUL)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= max_length
        and value.startswith(prefix)
        and "\x00" not in value
    )
