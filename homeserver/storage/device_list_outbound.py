"""What other servers were last told of each local user's device list: SQL only.

Owns ``device_list_outbound`` (schema/0039_remote_device_lists.sql): per local user,
the last ``stream_id`` of their ``m.device_list_update`` sequence and a digest of
each device and cross-signing key announced, so a change is announced as the
devices that changed (spec: server-server-api.md#device-management).

Also reads ``room_memberships`` (storage.events'): the servers sharing a room with
a user, who receive the updates; and ``device_list_changes`` (storage.device_lists'),
the stream the announcer consumes.  An announcement is one transaction: the new
announced state, the durable EDUs telling it (``federation_outbound_edus``, through
storage.federation_outbound's ``add_edus_txn``) and the announcer's position in
``stream_consumers``: after a crash the change is announced again, or was wholly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.federation_outbound import add_edus_txn
from homeserver.storage.stream_consumers import set_position_txn
from homeserver.storage.transaction import Transaction


@attrs.frozen
class Announced:
    #: The last stream_id of the user's sequence (0: nothing announced yet).
    stream_id: int
    #: device ID → digest of what was announced.
    devices: dict[str, str]
    #: usage → digest.
    signing: dict[str, str]


#: Given what was announced, the new state to record and how many stream_ids the
#: announcement uses (one per EDU); returns what the caller needs.
Announcement = Callable[[Announced], tuple[Announced, Any]]
#: Given what was announced, the new state and the EDUs (type, content) telling it.
AnnouncementEdus = Callable[[Announced], tuple[Announced, Sequence[tuple[str, Mapping[str, Any]]]]]


class DeviceListOutboundStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def current_stream_id(self, user_id: str) -> int:
        rows = await self._db.execute_read(
            "device_list_outbound_stream_id",
            "SELECT stream_id FROM device_list_outbound WHERE user_id = ?",
            user_id,
        )
        return int(rows[0][0]) if rows else 0

    async def announce(self, user_id: str, decide: Announcement) -> Any:
        """Read what was announced of ``user_id``, let ``decide`` work out the new
        state, and store it, in one transaction; ``decide``'s result."""

        def write(txn: Transaction) -> Any:
            txn.execute(
                "SELECT stream_id, announced FROM device_list_outbound WHERE user_id = ?",
                (user_id,),
            )
            row = txn.fetchone()
            if row is None:
                before = Announced(0, {}, {})
            else:
                parsed = json.loads(row[1])
                before = Announced(int(row[0]), parsed["devices"], parsed["signing"])
            after, result = decide(before)
            if after != before:
                text = json.dumps(
                    {"devices": after.devices, "signing": after.signing}, sort_keys=True
                )
                txn.execute(
                    "INSERT INTO device_list_outbound (user_id, stream_id, announced)"
                    " VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET"
                    " stream_id = excluded.stream_id, announced = excluded.announced",
                    (user_id, after.stream_id, text),
                )
            return result

        return await self._db.run_interaction("announce_device_list", write)

    async def announce_with_edus(
        self,
        user_id: str,
        decide: AnnouncementEdus,
        *,
        server_name: str,
        allows: Callable[[str], bool],
        consumer: str,
        position: int,
        now_ms: int,
    ) -> set[str]:
        """In one transaction: what was announced of ``user_id``, ``decide``'s new
        state, its EDUs stored for every other server sharing a room with the user
        (that ``allows`` admits), and the ``consumer``'s position moved to
        ``position``; the destinations that got EDUs."""

        def write(txn: Transaction) -> set[str]:
            before = _announced_txn(txn, user_id)
            after, edus = decide(before)
            destinations: set[str] = set()
            if after != before:
                _store_announced_txn(txn, user_id, after)
            if edus:
                destinations = {
                    server
                    for server in _servers_sharing_txn(txn, user_id)
                    if server != server_name and allows(server)
                }
                rows = [
                    (destination, edu_type, content)
                    for edu_type, content in edus
                    for destination in sorted(destinations)
                ]
                add_edus_txn(txn, rows, now_ms)
            set_position_txn(txn, consumer, position)
            return destinations

        return await self._db.run_interaction("announce_device_list_edus", write)

    async def changes_after(self, after: int, up_to: int, limit: int) -> list[tuple[int, str]]:
        """``(stream_id, user_id)`` of the ``device_lists`` stream's changes in
        ``(after, up_to]`` that everyone sharing a room must hear of, oldest first."""
        rows = await self._db.execute_read(
            "device_list_outbound_changes",
            "SELECT stream_id, user_id FROM device_list_changes"
            " WHERE stream_id > ? AND stream_id <= ? AND only_for IS NULL"
            " ORDER BY stream_id LIMIT ?",
            after,
            up_to,
            limit,
        )
        return [(int(stream_id), str(user_id)) for stream_id, user_id in rows]

    async def servers_new_to(self, user_id: str, room_id: str) -> set[str]:
        """The servers of the members joined to ``room_id`` that have nobody joined
        to any other room ``user_id`` is joined to (the user just joined it)."""

        def read(txn: Transaction) -> set[str]:
            txn.execute(
                "SELECT DISTINCT m.user_id FROM room_memberships m"
                " JOIN rooms r ON r.room_nid = m.room_nid"
                " WHERE r.room_id = ? AND m.membership = 'join'",
                (room_id,),
            )
            in_room = {str(row[0]).partition(":")[2] for row in txn.fetchall()}
            txn.execute(
                "SELECT DISTINCT theirs.user_id FROM room_memberships mine"
                " JOIN room_memberships theirs ON theirs.room_nid = mine.room_nid"
                " JOIN rooms r ON r.room_nid = mine.room_nid"
                " WHERE mine.user_id = ? AND mine.membership = 'join'"
                " AND theirs.membership = 'join' AND r.room_id <> ?",
                (user_id, room_id),
            )
            elsewhere = {str(row[0]).partition(":")[2] for row in txn.fetchall()}
            return in_room - elsewhere

        return await self._db.run_read("device_list_servers_new_to", read)

    async def store_edus(
        self, edus: Sequence[tuple[str, str, Mapping[str, Any]]], *, now_ms: int
    ) -> None:
        """Durable EDUs ``(destination, type, content)``, in one transaction."""
        await self._db.run_interaction("device_list_join_edus", add_edus_txn, edus, now_ms)

    async def servers_sharing_a_room(self, user_id: str) -> set[str]:
        """The servers of everyone joined to a room ``user_id`` is joined to."""
        return await self._db.run_read("device_list_servers", _servers_sharing_txn, user_id)


def _announced_txn(txn: Transaction, user_id: str) -> Announced:
    txn.execute(
        "SELECT stream_id, announced FROM device_list_outbound WHERE user_id = ?", (user_id,)
    )
    row = txn.fetchone()
    if row is None:
        return Announced(0, {}, {})
    parsed = json.loads(row[1])
    return Announced(int(row[0]), parsed["devices"], parsed["signing"])


def _store_announced_txn(txn: Transaction, user_id: str, after: Announced) -> None:
    text = json.dumps({"devices": after.devices, "signing": after.signing}, sort_keys=True)
    txn.execute(
        "INSERT INTO device_list_outbound (user_id, stream_id, announced)"
        " VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET"
        " stream_id = excluded.stream_id, announced = excluded.announced",
        (user_id, after.stream_id, text),
    )


def _servers_sharing_txn(txn: Transaction, user_id: str) -> set[str]:
    txn.execute(
        "SELECT DISTINCT theirs.user_id FROM room_memberships mine"
        " JOIN room_memberships theirs ON theirs.room_nid = mine.room_nid"
        " WHERE mine.user_id = ? AND mine.membership = 'join'"
        " AND theirs.membership = 'join'",
        (user_id,),
    )
    return {str(row[0]).partition(":")[2] for row in txn.fetchall()}
