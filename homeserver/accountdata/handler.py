"""Account data, room tags and ignored users (rules only).

Every change gets the next position of the ``account_data`` stream, from the
database inside the writing transaction.  Writes run concurrently, without a lock: a
change is announced (:meth:`AccountDataHandler.current_position`, the notifier
waking the user's ``/sync``) only once every earlier position is committed or
abandoned (streams/positions.py).  A read-modify-write runs in one transaction, so a
concurrent change of the same row makes PostgreSQL re-run it.

Room tags are the per-room account data ``m.tag`` with content ``{"tags": {...}}``,
changed by read-modify-write in one transaction.

spec: client-server-api/_index.md#client-config, #room-tagging, #ignoring-users
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from homeserver import errors
from homeserver.identifiers import is_valid_user_id
from homeserver.storage.account_data import AccountDataStore
from homeserver.streams.notifier import Notifier
from homeserver.util.caches import LruCache

logger = logging.getLogger(__name__)

#: Shows a server-managed type's stored content (or None) to the user as clients see it.
Presenter = Callable[[str, "dict[str, Any] | None"], "dict[str, Any]"]

TAG = "m.tag"
IGNORED_USER_LIST = "m.ignored_user_list"
#: Types the server manages; clients may read them but not set them (405).
#: spec: client-server-api/modules/account_data.md "Server Behaviour"
SERVER_MANAGED_TYPES = frozenset({"m.fully_read", "m.push_rules"})
#: Longest account data type accepted, in UTF-8 bytes (event types are limited alike).
MAX_TYPE_BYTES = 255
#: spec: "The name of a tag MUST NOT exceed 255 bytes."
MAX_TAG_BYTES = 255


@attrs.frozen
class AccountDataChanges:
    """Account data whose newest change lies in a range of stream positions."""

    #: type -> content
    global_data: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: room ID -> type -> content (room tags as ``m.tag``)
    room_data: dict[str, dict[str, dict[str, Any]]] = attrs.field(factory=dict)

    def __bool__(self) -> bool:
        return bool(self.global_data or self.room_data)


def check_client_may_set(event_type: str) -> None:
    """405 ``M_BAD_JSON`` for types only the server may set (``m.fully_read``,
    ``m.push_rules``), globally or per room."""
    if event_type in SERVER_MANAGED_TYPES:
        raise errors.MatrixError(
            405, errors.Codes.BAD_JSON, f"Cannot set {event_type} through this API"
        )


def _check_type(event_type: str) -> None:
    if len(event_type.encode("utf-8")) > MAX_TYPE_BYTES or "\x00" in event_type:
        raise errors.invalid_param(
            f"Account data type must be at most {MAX_TYPE_BYTES} bytes, without NUL"
        )


def parse_ignored_users(content: dict[str, Any]) -> frozenset[str]:
    """The user IDs in ``m.ignored_user_list`` content; 400 ``M_BAD_JSON`` if malformed.

    spec: event-schemas m.ignored_user_list (``ignored_users``: required, an object
    mapping user IDs to objects)
    """
    ignored = content.get("ignored_users")
    if not isinstance(ignored, dict):
        raise errors.bad_json("'ignored_users' must be an object mapping user IDs to objects")
    for user_id, value in ignored.items():
        if not is_valid_user_id(user_id):
            raise errors.bad_json(f"'ignored_users': {user_id!r} is not a valid user ID")
        if not isinstance(value, dict):
            raise errors.bad_json(f"'ignored_users': the value for {user_id!r} must be an object")
    return frozenset(ignored)


def tags_of(content: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The tags in ``m.tag`` content, ignoring malformed entries (it may have been set
    through the generic account data endpoint)."""
    tags = content.get("tags") if content is not None else None
    if not isinstance(tags, dict):
        return {}
    return {name: value for name, value in tags.items() if isinstance(value, dict)}


def _check_tag(tag: str, content: dict[str, Any]) -> None:
    if len(tag.encode("utf-8")) > MAX_TAG_BYTES:
        raise errors.invalid_param(f"Tag names must be at most {MAX_TAG_BYTES} bytes")
    order = content.get("order")
    if "order" in content and (isinstance(order, bool) or not isinstance(order, int | float)):
        raise errors.bad_json("'order' must be a number")


class AccountDataHandler:
    """Call :meth:`load` once before use (it reads the newest stream position)."""

    def __init__(
        self,
        store: AccountDataStore,
        notifier: Notifier,
        *,
        ignored_cache_size: int = 10_000,
        change_cache_size: int = 100_000,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._position = 0
        self._ignored: LruCache[str, frozenset[str]] = LruCache(ignored_cache_size)
        #: Bumped by every write of an ignored users list (see :meth:`ignored_users`).
        self._ignored_generation = 0
        #: The newest change per user since ``_changes_known_after``, oldest first:
        #: lets :meth:`changes` answer "nothing" without the database.
        self._last_change: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._changes_known_after = 0
        self._change_cache_size = change_cache_size
        #: Called with the user ID after the user's set of ignored users changed.
        self.on_ignored_users_changed: list[Callable[[str], None]] = []
        #: Server-managed global types shown through a presenter (see :meth:`manage`).
        self._presenters: dict[str, Presenter] = {}

    def manage(self, event_type: str, present: Presenter) -> None:
        """Show clients ``present(user_id, stored content or None)`` for the global
        type ``event_type`` wherever they read it (``GET``, ``/sync``), and include it
        in every initial sync even if nothing is stored.  The owner of the type keeps
        what it needs in the stored content (e.g. push rule changes, not the defaults)."""
        self._presenters[event_type] = present

    async def load(self) -> None:
        """Start from the newest position in the database."""
        self._position = await self._store.get_max_stream_id()
        self._changes_known_after = self._position
        self._last_change.clear()

    def current_position(self) -> int:
        """The newest announced position of the ``account_data`` stream."""
        return self._position

    # --- reading -------------------------------------------------------------------------

    async def get_global(self, user_id: str, event_type: str) -> dict[str, Any] | None:
        stored = await self.get_stored_global(user_id, event_type)
        present = self._presenters.get(event_type)
        return stored if present is None else present(user_id, stored)

    async def get_stored_global(self, user_id: str, event_type: str) -> dict[str, Any] | None:
        """Global account data as stored, without a presenter (for the type's owner)."""
        _check_type(event_type)
        return await self._store.get(user_id, None, event_type)

    async def get_room(self, user_id: str, room_id: str, event_type: str) -> dict[str, Any] | None:
        _check_type(event_type)
        return await self._store.get(user_id, room_id, event_type)

    async def get_tags(self, user_id: str, room_id: str) -> dict[str, dict[str, Any]]:
        return tags_of(await self._store.get(user_id, room_id, TAG))

    async def ignored_users(self, user_id: str) -> frozenset[str]:
        """Whom ``user_id`` ignores (never themself, whatever their list says)."""
        cached = self._ignored.get(user_id)
        if cached is not None:
            return cached
        generation = self._ignored_generation
        content = await self._store.get(user_id, None, IGNORED_USER_LIST)
        ignored = _lenient_ignored_users(content) - {user_id}
        # A list written while we read must not be replaced by what we read.
        if generation == self._ignored_generation:
            self._ignored.set(user_id, ignored)
        return ignored

    async def changes(
        self, user_id: str, from_position: int, to_position: int, *, initial: bool = False
    ) -> AccountDataChanges:
        """The user's account data last changed in ``(from_position, to_position]``
        (newest content of each); ``from_position`` 0 gives everything.  ``initial``
        (an initial sync) adds the managed types' content even if nothing is stored."""
        result = AccountDataChanges()
        if initial:
            # Managed types are always part of the full set, stored or not.
            for event_type, present in self._presenters.items():
                result.global_data[event_type] = present(user_id, None)
        if to_position <= from_position:
            return result
        if from_position >= self._changes_known_after:
            last = self._last_change.get(user_id)
            if last is None or last <= from_position:
                return result
        for row in await self._store.changes(user_id, from_position, to_position):
            if row.room_id is None:
                presenter = self._presenters.get(row.data_type)
                content = row.content if presenter is None else presenter(user_id, row.content)
                result.global_data[row.data_type] = content
            else:
                result.room_data.setdefault(row.room_id, {})[row.data_type] = row.content
        return result

    # --- writing -------------------------------------------------------------------------

    async def set_global(self, user_id: str, event_type: str, content: dict[str, Any]) -> int:
        """Set global account data; returns its stream position.

        ``m.ignored_user_list`` must have the spec's shape (400 ``M_BAD_JSON``).
        """
        _check_type(event_type)
        if event_type == IGNORED_USER_LIST:
            return await self._set_ignored_user_list(user_id, content)

        async def write() -> int:
            return await self._store.set(user_id, None, event_type, content)

        return await self._write(user_id, write)

    async def _set_ignored_user_list(self, user_id: str, content: dict[str, Any]) -> int:
        new_ignored = parse_ignored_users(content) - {user_id}
        old_ignored: frozenset[str] = frozenset()

        def replace(current: dict[str, Any] | None) -> dict[str, Any]:
            nonlocal old_ignored
            # Read in the writing transaction: two concurrent writes cannot both see
            # the list from before the other and miss a change.
            old_ignored = _lenient_ignored_users(current) - {user_id}
            return content

        async def write() -> int | None:
            position = await self._store.update(user_id, None, IGNORED_USER_LIST, replace)
            # Dropped, not replaced: a concurrent write may have committed after this
            # one and yet get here first.  Reads under way must not fill it either.
            self._ignored_generation += 1
            self._ignored.invalidate(user_id)
            return position

        position = await self._write(user_id, write)
        if new_ignored != old_ignored:
            for callback in self.on_ignored_users_changed:
                try:
                    callback(user_id)
                except Exception:
                    logger.error("ignored users callback failed for %s", user_id, exc_info=True)
        return position

    async def set_room(
        self, user_id: str, room_id: str, event_type: str, content: dict[str, Any]
    ) -> int:
        """Set account data for one room; returns its stream position."""
        _check_type(event_type)

        async def write() -> int:
            return await self._store.set(user_id, room_id, event_type, content)

        return await self._write(user_id, write)

    async def update_global(
        self,
        user_id: str,
        event_type: str,
        update: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    ) -> int:
        """Read-modify-write of global account data in one transaction (re-run, with
        ``update``, if a concurrent change conflicts); ``update`` runs on a database
        thread, must be pure, returns None for "no change" and may raise to refuse
        (nothing changes)."""
        _check_type(event_type)

        async def write() -> int | None:
            return await self._store.update(user_id, None, event_type, update)

        return await self._write(user_id, write)

    async def add_tag(self, user_id: str, room_id: str, tag: str, content: dict[str, Any]) -> int:
        """Add (or replace) a tag on a room.  spec: #put_matrixclientv3useruseridroomsroomidtagstag"""
        _check_tag(tag, content)

        def update(current: dict[str, Any] | None) -> dict[str, Any]:
            return {**(current or {}), "tags": {**tags_of(current), tag: content}}

        return await self._update_room(user_id, room_id, TAG, update)

    async def remove_tag(self, user_id: str, room_id: str, tag: str) -> int:
        """Remove a tag from a room (no change if it was not there)."""

        def update(current: dict[str, Any] | None) -> dict[str, Any] | None:
            tags = tags_of(current)
            if tag not in tags:
                return None
            del tags[tag]
            return {**(current or {}), "tags": tags}

        return await self._update_room(user_id, room_id, TAG, update)

    async def _update_room(
        self,
        user_id: str,
        room_id: str,
        event_type: str,
        update: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    ) -> int:
        async def write() -> int | None:
            return await self._store.update(user_id, room_id, event_type, update)

        return await self._write(user_id, write)

    async def _write(self, user_id: str, write: Callable[[], Awaitable[int | None]]) -> int:
        """Run one store write, then announce its position once it is visible."""
        position = await write()
        if position is None:
            return self._position
        # Noted before the position can become visible: :meth:`changes` must never
        # answer "nothing" from the cache for a range that holds this change.
        self._note_change(user_id, position)
        await self._store.wait_until_visible(position)
        self._position = max(self._position, position)
        self._notifier.notify("account_data", position, users=[user_id])
        return position

    def _note_change(self, user_id: str, position: int) -> None:
        # Writes finish in any order: keep the user's newest position.
        newest = max(position, self._last_change.pop(user_id, 0))
        self._last_change[user_id] = newest
        while len(self._last_change) > self._change_cache_size:
            _, forgotten = self._last_change.popitem(last=False)
            self._changes_known_after = max(self._changes_known_after, forgotten)


def _lenient_ignored_users(content: dict[str, Any] | None) -> frozenset[str]:
    # Stored lists were validated on the way in; still, never fail reading one.
    ignored = content.get("ignored_users") if content is not None else None
    if not isinstance(ignored, dict):
        return frozenset()
    return frozenset(user_id for user_id in ignored if isinstance(user_id, str))
