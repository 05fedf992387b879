"""Room aliases and the published room directory: SQL only.

Owns ``room_aliases`` and ``published_rooms``.  A published room's row carries its
summary (name, topic, member count, ...) as last computed by the directory handler,
so listing the directory is one indexed query and never reads room state.

spec: client-server-api/_index.md#room-aliases, #published-room-directory
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

# The row types belong to the directory handler's layer; re-exported here.
from homeserver.directory.listing import ListingPosition as ListingPosition
from homeserver.directory.listing import PublishedRoom as PublishedRoom
from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction

#: The escape character for LIKE patterns (a backslash reads differently per engine).
_LIKE_ESCAPE = "!"


@attrs.frozen
class AliasMapping:
    room_alias: str
    room_id: str
    creator: str


_COLUMNS = (
    "room_id",
    "joined_members",
    "name",
    "topic",
    "avatar_url",
    "canonical_alias",
    "join_rule",
    "history_visibility",
    "guest_access",
    "room_type",
    "federatable",
    "listed",
    "search_text",
)
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM published_rooms"


def _row_values(room: PublishedRoom) -> tuple[Any, ...]:
    return tuple(getattr(room, column) for column in _COLUMNS)


def _from_row(row: Sequence[Any]) -> PublishedRoom:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["joined_members"] = int(values["joined_members"])
    values["federatable"] = bool(values["federatable"])
    values["listed"] = bool(values["listed"])
    return PublishedRoom(**values)


def like_contains(term: str) -> str:
    """A LIKE pattern (with ``ESCAPE '!'``) matching text that contains ``term``."""
    escaped = (
        term.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


class DirectoryStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # --- aliases -------------------------------------------------------------------

    async def create_alias(self, room_alias: str, room_id: str, creator: str, now_ms: int) -> bool:
        """Map ``room_alias`` to ``room_id``; False (and no change) if it is taken."""

        def insert(txn: Transaction) -> bool:
            txn.execute(
                "INSERT INTO room_aliases (room_alias, room_id, creator, created_ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (room_alias) DO NOTHING",
                (room_alias, room_id, creator, now_ms),
            )
            return txn.rowcount == 1

        return await self._db.run_interaction("create_alias", insert)

    async def get_alias(self, room_alias: str) -> AliasMapping | None:
        rows = await self._db.execute(
            "get_alias",
            "SELECT room_alias, room_id, creator FROM room_aliases WHERE room_alias = ?",
            room_alias,
        )
        return AliasMapping(*rows[0]) if rows else None

    async def delete_alias(self, room_alias: str) -> bool:
        """Remove the mapping; False if there was none."""

        def delete(txn: Transaction) -> bool:
            txn.execute("DELETE FROM room_aliases WHERE room_alias = ?", (room_alias,))
            return txn.rowcount == 1

        return await self._db.run_interaction("delete_alias", delete)

    async def get_aliases_for_room(self, room_id: str) -> list[str]:
        rows = await self._db.execute(
            "get_aliases_for_room",
            "SELECT room_alias FROM room_aliases WHERE room_id = ? ORDER BY room_alias",
            room_id,
        )
        return [row[0] for row in rows]

    async def move_aliases(self, old_room_id: str, new_room_id: str) -> list[str]:
        """Point every alias of ``old_room_id`` at ``new_room_id`` (a room upgrade);
        returns the aliases moved."""

        def move(txn: Transaction) -> list[str]:
            txn.execute(
                "SELECT room_alias FROM room_aliases WHERE room_id = ? ORDER BY room_alias",
                (old_room_id,),
            )
            moved = [row[0] for row in txn.fetchall()]
            txn.execute(
                "UPDATE room_aliases SET room_id = ? WHERE room_id = ?",
                (new_room_id, old_room_id),
            )
            return moved

        return await self._db.run_interaction("move_aliases", move)

    # --- published rooms -----------------------------------------------------------

    async def is_published(self, room_id: str) -> bool:
        rows = await self._db.execute(
            "is_published", "SELECT 1 FROM published_rooms WHERE room_id = ?", room_id
        )
        return bool(rows)

    async def publish_room(self, room: PublishedRoom) -> None:
        """Publish ``room`` (or refresh its summary if it already is)."""
        columns = ", ".join(_COLUMNS)
        marks = ", ".join("?" * len(_COLUMNS))
        updates = ", ".join(f"{column} = excluded.{column}" for column in _COLUMNS[1:])
        await self._db.execute(
            "publish_room",
            f"INSERT INTO published_rooms ({columns}) VALUES ({marks})"
            f" ON CONFLICT (room_id) DO UPDATE SET {updates}",
            *_row_values(room),
        )

    async def update_published_room(self, room: PublishedRoom) -> bool:
        """Refresh the summary of a room that is published; False (no change) if not."""
        assignments = ", ".join(f"{column} = ?" for column in _COLUMNS[1:])

        def update(txn: Transaction) -> bool:
            txn.execute(
                f"UPDATE published_rooms SET {assignments} WHERE room_id = ?",
                (*_row_values(room)[1:], room.room_id),
            )
            return txn.rowcount == 1

        return await self._db.run_interaction("update_published_room", update)

    async def unpublish_room(self, room_id: str) -> None:
        await self._db.execute(
            "unpublish_room", "DELETE FROM published_rooms WHERE room_id = ?", room_id
        )

    async def get_published_room(self, room_id: str) -> PublishedRoom | None:
        rows = await self._db.execute("get_published_room", _SELECT + " WHERE room_id = ?", room_id)
        return _from_row(rows[0]) if rows else None

    async def count_listed_rooms(self, *, federatable_only: bool = False) -> int:
        """Listed rooms; ``federatable_only``: only those other servers may see."""
        sql = "SELECT COUNT(*) FROM published_rooms WHERE listed"
        if federatable_only:
            sql += " AND federatable"
        rows = await self._db.execute("count_listed_rooms", sql)
        return int(rows[0][0])

    async def list_published_rooms(
        self,
        *,
        limit: int,
        after: ListingPosition | None = None,
        before: ListingPosition | None = None,
        search: str | None = None,
        room_types: Sequence[str | None] | None = None,
        federatable_only: bool = False,
    ) -> tuple[list[PublishedRoom], bool]:
        """Listed rooms in listing order, and whether more lie beyond them.

        ``after``: the rooms following that position; ``before``: the ``limit`` rooms
        just before it (still returned in listing order, "more" then meaning more
        before them).  ``search`` is a substring of ``search_text``; ``room_types``
        keeps rooms of those types (None: rooms without a type).  ``federatable_only``
        leaves out rooms created with ``m.federate: false`` (listings for other servers).
        """
        if after is not None and before is not None:
            raise ValueError("give at most one of after and before")
        clauses = ["listed AND federatable" if federatable_only else "listed"]
        args: list[Any] = []
        if after is not None:
            clauses.append("(joined_members < ? OR (joined_members = ? AND room_id > ?))")
            args += [after.joined_members, after.joined_members, after.room_id]
        if before is not None:
            clauses.append("(joined_members > ? OR (joined_members = ? AND room_id < ?))")
            args += [before.joined_members, before.joined_members, before.room_id]
        if search:
            clauses.append(f"search_text LIKE ? ESCAPE '{_LIKE_ESCAPE}'")
            args.append(like_contains(search))
        if room_types is not None:
            named = [room_type for room_type in room_types if room_type is not None]
            alternatives = []
            if named:
                alternatives.append(f"room_type IN ({', '.join('?' * len(named))})")
                args += named
            if None in room_types:
                alternatives.append("room_type IS NULL")
            clauses.append("(" + " OR ".join(alternatives) + ")" if alternatives else "1 = 0")
        order = "joined_members ASC, room_id DESC" if before else "joined_members DESC, room_id"
        sql = f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT ?"
        args.append(limit + 1)
        rows = await self._db.execute("list_published_rooms", sql, *args)
        rooms = [_from_row(row) for row in rows[:limit]]
        if before is not None:
            rooms.reverse()
        return rooms, len(rows) > limit
