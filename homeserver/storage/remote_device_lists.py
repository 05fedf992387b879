"""Remote users' device lists and cross-signing keys, cached: SQL only.

Owns ``remote_device_lists``, ``remote_devices``, ``remote_device_list_updates`` and
``remote_cross_signing_keys`` (schema/0039_remote_device_lists.sql,
0041_remote_device_list_generation.sql).  Key objects are stored as canonical JSON
text; this module never parses them.

Bounds against a hostile server: at most :data:`MAX_DEVICES_PER_USER` devices per
user (an update adding one more is refused), and only the last
:data:`KEPT_UPDATE_IDS` applied ``stream_id``s per user (an update naming an older
one as ``prev_id`` makes the list stale, fetched again, which is always safe).
Every marking stale bumps ``stale_generation``; a snapshot clears ``stale`` only if
the generation did not move while it was fetched (:meth:`replace_list`).

spec: server-server-api.md#device-management
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import attrs

from homeserver.storage.database import Database
from homeserver.storage.state import chunks
from homeserver.storage.transaction import Transaction

#: Devices kept per remote user.
MAX_DEVICES_PER_USER = 1000
#: Applied update stream_ids kept per remote user (the prev_ids a next update may name).
KEPT_UPDATE_IDS = 50
#: Marks a list stale and bumps its generation (see the module doc).
_MARK_STALE = "stale = ?, stale_generation = stale_generation + 1"


@attrs.frozen
class RemoteDevice:
    device_id: str
    key_json: str
    display_name: str | None


@attrs.frozen
class CachedDeviceList:
    user_id: str
    stream_id: int
    stale: bool
    devices: list[RemoteDevice]
    #: usage (``master``, ``self_signing``) → canonical JSON.
    signing_keys: dict[str, str]


@attrs.frozen
class DeviceUpdate:
    """One ``m.device_list_update``, checked."""

    user_id: str
    device_id: str
    stream_id: int
    prev_ids: tuple[int, ...]
    deleted: bool
    #: Canonical JSON of the device's keys; None: the device has none (or is deleted).
    key_json: str | None
    display_name: str | None


class UpdateOutcome:
    APPLIED = "applied"
    #: Already applied (a retried transaction), or older than the snapshot.
    DUPLICATE = "duplicate"
    #: Nothing cached for the user: nothing to apply it to.
    UNTRACKED = "untracked"
    #: A prev_id is unknown: the list is now stale and must be fetched again.
    STALE = "stale"
    #: A new device past :data:`MAX_DEVICES_PER_USER`: not stored.
    REFUSED = "refused"


class RemoteDeviceListStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_lists(self, user_ids: Collection[str]) -> dict[str, CachedDeviceList]:
        """The cached lists of those of ``user_ids`` that have one (stale or not)."""

        def read(txn: Transaction) -> dict[str, CachedDeviceList]:
            found: dict[str, CachedDeviceList] = {}
            for part in chunks(sorted(user_ids)):
                marks = ",".join("?" * len(part))
                txn.execute(
                    "SELECT user_id, stream_id, stale FROM remote_device_lists"
                    f" WHERE user_id IN ({marks})",
                    tuple(part),
                )
                for user_id, stream_id, stale in txn.fetchall():
                    found[user_id] = CachedDeviceList(user_id, int(stream_id), bool(stale), [], {})
                txn.execute(
                    "SELECT user_id, device_id, key_json, display_name FROM remote_devices"
                    f" WHERE user_id IN ({marks}) ORDER BY user_id, device_id",
                    tuple(part),
                )
                for user_id, device_id, key_json, display_name in txn.fetchall():
                    if user_id in found:
                        found[user_id].devices.append(
                            RemoteDevice(device_id, key_json, display_name)
                        )
                txn.execute(
                    "SELECT user_id, usage, key_json FROM remote_cross_signing_keys"
                    f" WHERE user_id IN ({marks})",
                    tuple(part),
                )
                for user_id, usage, key_json in txn.fetchall():
                    if user_id in found:
                        found[user_id].signing_keys[usage] = key_json
            return found

        if not user_ids:
            return {}
        return await self._db.run_read("get_remote_device_lists", read)

    async def replace_list(
        self,
        user_id: str,
        stream_id: int,
        devices: Sequence[RemoteDevice],
        signing_keys: Mapping[str, str],
        *,
        now_ms: int,
        generation: int | None = None,
    ) -> bool:
        """Store a fresh snapshot (``GET /user/devices``), replacing what was cached;
        whether it is current.  ``generation``: :meth:`get_generation` before the
        request was sent; if the list was marked stale since, the snapshot is stored
        but stays stale (an update that arrived meanwhile may be newer), and False
        is returned: fetch again."""

        def write(txn: Transaction) -> bool:
            txn.execute(
                "SELECT stale_generation FROM remote_device_lists WHERE user_id = ?", (user_id,)
            )
            row = txn.fetchone()
            current = row is None or generation is None or int(row[0]) == generation
            for table in ("remote_devices", "remote_device_list_updates"):
                txn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
            txn.execute("DELETE FROM remote_cross_signing_keys WHERE user_id = ?", (user_id,))
            txn.execute(
                "INSERT INTO remote_device_lists (user_id, stream_id, stale, updated_ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET"
                " stream_id = excluded.stream_id, stale = excluded.stale,"
                " updated_ts = excluded.updated_ts",
                (user_id, stream_id, not current, now_ms),
            )
            txn.executemany(
                "INSERT INTO remote_devices (user_id, device_id, key_json, display_name)"
                " VALUES (?, ?, ?, ?)",
                [(user_id, d.device_id, d.key_json, d.display_name) for d in devices],
            )
            txn.executemany(
                "INSERT INTO remote_cross_signing_keys (user_id, usage, key_json) VALUES (?, ?, ?)",
                sorted((user_id, usage, key_json) for usage, key_json in signing_keys.items()),
            )
            return current

        return await self._db.run_interaction("replace_remote_device_list", write)

    async def get_generation(self, user_id: str) -> int | None:
        """The list's ``stale_generation`` (None: nothing cached), to hand to
        :meth:`replace_list` after the fetch."""
        rows = await self._db.execute_read(
            "get_remote_device_list_generation",
            "SELECT stale_generation FROM remote_device_lists WHERE user_id = ?",
            user_id,
        )
        return int(rows[0][0]) if rows else None

    async def apply_update(self, update: DeviceUpdate, *, now_ms: int) -> str:
        """Apply one update on top of the cached list if every ``prev_id`` is known;
        an :class:`UpdateOutcome`."""

        def write(txn: Transaction) -> str:
            txn.execute(
                "SELECT stream_id, stale FROM remote_device_lists WHERE user_id = ?",
                (update.user_id,),
            )
            row = txn.fetchone()
            if row is None:
                return UpdateOutcome.UNTRACKED
            snapshot, stale = int(row[0]), bool(row[1])
            txn.execute(
                "SELECT stream_id FROM remote_device_list_updates WHERE user_id = ?",
                (update.user_id,),
            )
            applied = {int(r[0]) for r in txn.fetchall()}
            if update.stream_id <= snapshot or update.stream_id in applied:
                return UpdateOutcome.DUPLICATE
            if len(applied) >= KEPT_UPDATE_IDS and update.stream_id < min(applied):
                return UpdateOutcome.DUPLICATE  # older than what is kept: applied long ago
            known = applied | {snapshot}
            # No prev_id on top of a snapshot at a later point of the sequence: the
            # origin says it never sent us this user's updates (Synapse sends []
            # then), so we cannot know what we missed.
            unanchored = not update.prev_ids and snapshot != 0
            if stale or unanchored or not set(update.prev_ids) <= known:
                txn.execute(
                    f"UPDATE remote_device_lists SET {_MARK_STALE} WHERE user_id = ?",
                    (True, update.user_id),
                )
                return UpdateOutcome.STALE
            if not (update.deleted or update.key_json is None):
                txn.execute(
                    "SELECT COUNT(*) FROM remote_devices WHERE user_id = ? AND device_id <> ?",
                    (update.user_id, update.device_id),
                )
                row = txn.fetchone()
                if row is not None and int(row[0]) >= MAX_DEVICES_PER_USER:
                    return UpdateOutcome.REFUSED
            if update.deleted or update.key_json is None:
                txn.execute(
                    "DELETE FROM remote_devices WHERE user_id = ? AND device_id = ?",
                    (update.user_id, update.device_id),
                )
            else:
                txn.execute(
                    "INSERT INTO remote_devices (user_id, device_id, key_json, display_name)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE SET"
                    " key_json = excluded.key_json, display_name = excluded.display_name",
                    (update.user_id, update.device_id, update.key_json, update.display_name),
                )
            txn.execute(
                "INSERT INTO remote_device_list_updates (user_id, stream_id) VALUES (?, ?)",
                (update.user_id, update.stream_id),
            )
            kept = sorted(applied | {update.stream_id})
            if len(kept) > KEPT_UPDATE_IDS:
                txn.execute(
                    "DELETE FROM remote_device_list_updates WHERE user_id = ? AND stream_id < ?",
                    (update.user_id, kept[-KEPT_UPDATE_IDS]),
                )
            txn.execute(
                "UPDATE remote_device_lists SET updated_ts = ? WHERE user_id = ?",
                (now_ms, update.user_id),
            )
            return UpdateOutcome.APPLIED

        return await self._db.run_interaction("apply_remote_device_update", write)

    async def mark_stale(self, user_id: str) -> None:
        await self._db.execute(
            "mark_remote_device_list_stale",
            f"UPDATE remote_device_lists SET {_MARK_STALE} WHERE user_id = ?",
            True,
            user_id,
        )

    async def mark_stale_users(self, user_ids: Collection[str]) -> None:
        """Mark the cached lists among ``user_ids`` stale (the others have none)."""

        def write(txn: Transaction) -> None:
            for part in chunks(sorted(user_ids)):
                txn.execute(
                    f"UPDATE remote_device_lists SET {_MARK_STALE}"
                    f" WHERE user_id IN ({','.join('?' * len(part))})",
                    (True, *part),
                )

        if user_ids:
            await self._db.run_interaction("mark_remote_device_lists_stale", write)

    async def mark_room_members_stale(self, room_id: str) -> None:
        """Mark the cached lists of everyone joined to ``room_id`` stale."""
        await self._db.execute(
            "mark_room_device_lists_stale",
            f"UPDATE remote_device_lists SET {_MARK_STALE} WHERE user_id IN"
            " (SELECT m.user_id FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid"
            " WHERE r.room_id = ? AND m.membership = 'join')",
            True,
            room_id,
        )

    async def set_signing_keys(self, user_id: str, signing_keys: Mapping[str, str]) -> bool:
        """Replace the given usages of a tracked user's cross-signing keys; False
        (nothing written) when the user's list is not cached."""

        def write(txn: Transaction) -> bool:
            txn.execute("SELECT 1 FROM remote_device_lists WHERE user_id = ?", (user_id,))
            if txn.fetchone() is None:
                return False
            txn.executemany(
                "INSERT INTO remote_cross_signing_keys (user_id, usage, key_json)"
                " VALUES (?, ?, ?) ON CONFLICT (user_id, usage) DO UPDATE"
                " SET key_json = excluded.key_json",
                sorted((user_id, usage, key_json) for usage, key_json in signing_keys.items()),
            )
            return True

        return await self._db.run_interaction("set_remote_signing_keys", write)

    async def forget(self, user_ids: Collection[str]) -> None:
        """Drop the cached lists of users we no longer share a room with: nobody
        sends us their updates any more."""

        def write(txn: Transaction) -> None:
            for part in chunks(sorted(user_ids)):
                marks = ",".join("?" * len(part))
                for table in (
                    "remote_device_lists",
                    "remote_devices",
                    "remote_device_list_updates",
                    "remote_cross_signing_keys",
                ):
                    txn.execute(f"DELETE FROM {table} WHERE user_id IN ({marks})", tuple(part))

        if user_ids:
            await self._db.run_interaction("forget_remote_device_lists", write)

    async def shared_with_local_users(
        self, user_ids: Collection[str], server_name: str
    ) -> set[str]:
        """Those of ``user_ids`` joined to a room that a local user (an account of
        ``users``; ``server_name`` is theirs) is joined to.  Read over the indexes:
        each candidate's rooms by user, and per room the first local member found
        (``EXISTS``), not every member of every room."""
        del server_name  # local users are the accounts of ``users``

        def read(txn: Transaction) -> set[str]:
            found: set[str] = set()
            for part in chunks(sorted(user_ids)):
                marks = ",".join("?" * len(part))
                txn.execute(
                    "SELECT DISTINCT theirs.user_id FROM room_memberships theirs"
                    f" WHERE theirs.user_id IN ({marks}) AND theirs.membership = 'join'"
                    " AND EXISTS (SELECT 1 FROM room_memberships ours"
                    " JOIN users u ON u.user_id = ours.user_id"
                    " WHERE ours.room_nid = theirs.room_nid AND ours.membership = 'join')",
                    tuple(part),
                )
                found.update(str(row[0]) for row in txn.fetchall())
            return found

        if not user_ids:
            return set()
        return await self._db.run_read("remote_users_shared", read)
