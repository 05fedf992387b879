"""Presence: SQL only.

Owns ``presence`` (schema/0022_presence.sql): each user's latest presence, written in
batches by the presence handler and read back at start-up.

spec: client-server-api/modules/presence.md
"""

from __future__ import annotations

from collections.abc import Sequence

from homeserver.presence.record import UserPresence
from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction


class PresenceStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def store(self, states: Sequence[UserPresence]) -> None:
        """Write the latest presence of each user in ``states`` (one transaction).

        Presence is short-lived state that the next sync or heartbeat restores, so the
        commit does not wait for the disk.
        """

        def write(txn: Transaction) -> None:
            txn.executemany(
                "INSERT INTO presence (user_id, state, status_msg, last_active_ts,"
                " last_user_sync_ts, currently_active) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state,"
                " status_msg = excluded.status_msg, last_active_ts = excluded.last_active_ts,"
                " last_user_sync_ts = excluded.last_user_sync_ts,"
                " currently_active = excluded.currently_active",
                [
                    (
                        p.user_id,
                        p.state,
                        p.status_msg,
                        p.last_active_ts,
                        p.last_user_sync_ts,
                        p.currently_active,
                    )
                    for p in states
                ],
            )

        await self._db.run_unsynced("store_presence", write)

    async def load_all(self) -> list[UserPresence]:
        """Every stored presence."""
        rows = await self._db.execute_read(
            "load_presence",
            "SELECT user_id, state, status_msg, last_active_ts, last_user_sync_ts,"
            " currently_active FROM presence",
        )
        return [
            UserPresence(
                user_id=user_id,
                state=state,
                status_msg=status_msg,
                last_active_ts=int(last_active_ts),
                last_user_sync_ts=int(last_user_sync_ts),
                currently_active=bool(currently_active),
            )
            for user_id, state, status_msg, last_active_ts, last_user_sync_ts, currently_active in rows
        ]

    async def share_a_room(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Those of ``others`` joined to at least one room ``user_id`` is joined to."""
        if not others:
            return set()

        def read(txn: Transaction) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(others), 500):
                part = others[start : start + 500]
                marks = ",".join("?" * len(part))
                txn.execute(
                    "SELECT DISTINCT theirs.user_id FROM room_memberships mine"
                    " JOIN room_memberships theirs ON theirs.room_nid = mine.room_nid"
                    " WHERE mine.user_id = ? AND mine.membership = 'join'"
                    f" AND theirs.user_id IN ({marks}) AND theirs.membership = 'join'",
                    (user_id, *part),
                )
                found.update(row[0] for row in txn.fetchall())
            return found

        return await self._db.run_read("presence_share_a_room", read)

    async def joined_rooms(self, user_ids: Sequence[str]) -> set[str]:
        """The room IDs any of ``user_ids`` is joined to."""
        if not user_ids:
            return set()

        def read(txn: Transaction) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(user_ids), 500):
                part = user_ids[start : start + 500]
                txn.execute(
                    "SELECT DISTINCT r.room_id FROM room_memberships m"
                    " JOIN rooms r ON r.room_nid = m.room_nid"
                    f" WHERE m.user_id IN ({','.join('?' * len(part))}) AND m.membership = 'join'",
                    tuple(part),
                )
                found.update(row[0] for row in txn.fetchall())
            return found

        return await self._db.run_read("presence_joined_rooms", read)

    async def joined_rooms_by_user(self, user_ids: Sequence[str]) -> dict[str, set[str]]:
        """The room IDs each of ``user_ids`` is joined to (users in none are absent):
        one read for a whole batch (a presence EDU's entries)."""
        if not user_ids:
            return {}

        def read(txn: Transaction) -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            for start in range(0, len(user_ids), 500):
                part = user_ids[start : start + 500]
                txn.execute(
                    "SELECT m.user_id, r.room_id FROM room_memberships m"
                    " JOIN rooms r ON r.room_nid = m.room_nid"
                    f" WHERE m.user_id IN ({','.join('?' * len(part))}) AND m.membership = 'join'",
                    tuple(part),
                )
                for user_id, room_id in txn.fetchall():
                    found.setdefault(str(user_id), set()).add(str(room_id))
            return found

        return await self._db.run_read("presence_joined_rooms_by_user", read)

    async def joined_members(self, room_id: str) -> list[str]:
        """The users joined to ``room_id``."""
        rows = await self._db.execute_read(
            "presence_joined_members",
            "SELECT m.user_id FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid"
            " WHERE r.room_id = ? AND m.membership = 'join'",
            room_id,
        )
        return [row[0] for row in rows]
