"""Pushers, their delivery queue and the server's Web Push key: SQL only.

Owns ``pushers``, ``pusher_queue`` and ``webpush_vapid_key`` (schema/0032_pushers.py).
Reads ``rooms``, ``room_memberships`` and ``events`` (owned by storage.events) to find
who in a room has pushers and since when, and ``devices`` (storage.devices) to find
pushers whose device is gone.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs

from homeserver.pushers.kinds import PendingNotification, Pusher
from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction

_PUSHER_COLUMNS = (
    "id, user_id, kind, app_id, pushkey, app_display_name, device_display_name,"
    " profile_tag, lang, data, device_id, created_ts"
)

#: Room IDs per ``IN (...)`` list: well under SQLite's parameter limit.
_CHUNK = 500


@attrs.frozen
class NewPusher:
    """What ``POST /pushers/set`` stores (the user and ``(app_id, pushkey)`` name it)."""

    user_id: str
    kind: str
    app_id: str
    pushkey: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: Mapping[str, Any]
    device_id: str | None


@attrs.frozen
class DeliveryState:
    """A pusher's failures in a row, since when, and when to try next (ms)."""

    failures: int = 0
    failing_since: int | None = None
    next_attempt_ts: int | None = None


class TooManyPushers(Exception):
    """The user already has the most pushers allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} pushers per user")
        self.limit = limit


@attrs.frozen
class Recipient:
    """A local member of a room who has pushers."""

    pusher_ids: tuple[int, ...]
    #: The stream position of the membership event that made them a member: events
    #: before it were sent before they were in the room.
    since_position: int


@attrs.frozen
class QueuedNotification:
    pusher_id: int
    position: int
    event_id: str
    room_id: str
    actions: Sequence[Any]


def _pusher(row: Sequence[Any]) -> Pusher:
    (pusher_id, user_id, kind, app_id, pushkey, app_name, device_name, tag, lang, data) = row[:10]
    device_id, created_ts = row[10:12]
    return Pusher(
        pusher_id=int(pusher_id),
        user_id=user_id,
        kind=kind,
        app_id=app_id,
        pushkey=pushkey,
        app_display_name=app_name,
        device_display_name=device_name,
        profile_tag=tag,
        lang=lang,
        data=json.loads(data),
        device_id=device_id,
        created_ts=int(created_ts),
    )


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _delete_pushers_txn(txn: Transaction, where: str, args: Sequence[Any]) -> list[Pusher]:
    """Delete the pushers matching ``where`` with their queues; returns them."""
    txn.execute(f"SELECT {_PUSHER_COLUMNS} FROM pushers WHERE {where}", args)
    gone = [_pusher(row) for row in txn.fetchall()]
    for pusher in gone:
        txn.execute("DELETE FROM pusher_queue WHERE pusher_id = ?", (pusher.pusher_id,))
        txn.execute("DELETE FROM pushers WHERE id = ?", (pusher.pusher_id,))
    return gone


class PusherStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # --- pushers -----------------------------------------------------------------------

    async def user_ids_with_pushers(self) -> set[str]:
        rows = await self._db.execute_read(
            "user_ids_with_pushers", "SELECT DISTINCT user_id FROM pushers"
        )
        return {row[0] for row in rows}

    async def get_pushers_for_user(self, user_id: str) -> list[Pusher]:
        rows = await self._db.execute_read(
            "get_pushers_for_user",
            f"SELECT {_PUSHER_COLUMNS} FROM pushers WHERE user_id = ? ORDER BY id",
            user_id,
        )
        return [_pusher(row) for row in rows]

    async def get_pusher(self, pusher_id: int) -> Pusher | None:
        rows = await self._db.execute_read(
            "get_pusher", f"SELECT {_PUSHER_COLUMNS} FROM pushers WHERE id = ?", pusher_id
        )
        return _pusher(rows[0]) if rows else None

    async def set_pusher(
        self, new: NewPusher, *, now: int, remove_other_users: bool, max_per_user: int
    ) -> tuple[Pusher, list[Pusher]]:
        """Create or update ``new``'s pusher (one upsert, so two requests setting the
        same pusher at once both succeed); with ``remove_other_users`` first delete the
        pushers of other users with its ``(app_id, pushkey)``.  An update binds the
        pusher to ``new.device_id`` (the device setting it now) and sets
        ``created_ts`` (the ``pushkey_ts`` gateways get) to ``now``.  Returns the
        stored pusher and the pushers removed; raises :class:`TooManyPushers` when
        creating it would give the user more than ``max_per_user``."""

        def write(txn: Transaction) -> tuple[Pusher, list[Pusher]]:
            txn.execute(
                "SELECT COUNT(*) FROM pushers WHERE user_id = ?"
                " AND NOT (app_id = ? AND pushkey = ?)",
                (new.user_id, new.app_id, new.pushkey),
            )
            row = txn.fetchone()
            if row is not None and int(row[0]) >= max_per_user:
                raise TooManyPushers(max_per_user)
            removed: list[Pusher] = []
            if remove_other_users:
                removed = _delete_pushers_txn(
                    txn,
                    "app_id = ? AND pushkey = ? AND user_id <> ?",
                    (new.app_id, new.pushkey, new.user_id),
                )
            data = json.dumps(new.data)
            txn.execute(
                f"INSERT INTO pushers ({_PUSHER_COLUMNS}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET"
                " kind = excluded.kind, app_display_name = excluded.app_display_name,"
                " device_display_name = excluded.device_display_name,"
                " profile_tag = excluded.profile_tag, lang = excluded.lang,"
                " data = excluded.data, device_id = excluded.device_id,"
                " created_ts = excluded.created_ts, failures = 0, failing_since = NULL,"
                " next_attempt_ts = NULL"
                " RETURNING id",
                (
                    txn.engine.next_id(txn, "pusher_ids"),
                    new.user_id,
                    new.kind,
                    new.app_id,
                    new.pushkey,
                    new.app_display_name,
                    new.device_display_name,
                    new.profile_tag,
                    new.lang,
                    data,
                    new.device_id,
                    now,
                ),
            )
            stored = txn.fetchone()
            assert stored is not None
            pusher = Pusher(
                pusher_id=int(stored[0]),
                user_id=new.user_id,
                kind=new.kind,
                app_id=new.app_id,
                pushkey=new.pushkey,
                app_display_name=new.app_display_name,
                device_display_name=new.device_display_name,
                profile_tag=new.profile_tag,
                lang=new.lang,
                data=json.loads(data),
                device_id=new.device_id,
                created_ts=now,
            )
            return pusher, removed

        return await self._db.run_interaction("set_pusher", write)

    async def delete_pusher(self, user_id: str, app_id: str, pushkey: str) -> list[Pusher]:
        return await self._db.run_interaction(
            "delete_pusher",
            _delete_pushers_txn,
            "user_id = ? AND app_id = ? AND pushkey = ?",
            (user_id, app_id, pushkey),
        )

    async def delete_pusher_by_id(self, pusher_id: int) -> list[Pusher]:
        return await self._db.run_interaction(
            "delete_pusher_by_id", _delete_pushers_txn, "id = ?", (pusher_id,)
        )

    async def delete_pushers_of_deleted_devices(self, user_id: str) -> list[Pusher]:
        """The user's pushers set by a device that no longer exists."""
        return await self._db.run_interaction(
            "delete_pushers_of_deleted_devices",
            _delete_pushers_txn,
            "user_id = ? AND device_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM devices d"
            " WHERE d.user_id = pushers.user_id AND d.device_id = pushers.device_id)",
            (user_id,),
        )

    async def delete_user_pushers(self, user_id: str) -> list[Pusher]:
        return await self._db.run_interaction(
            "delete_user_pushers", _delete_pushers_txn, "user_id = ?", (user_id,)
        )

    # --- finding recipients ------------------------------------------------------------

    async def room_recipients(
        self, room_ids: Collection[str], *, also_count: Collection[str] = ()
    ) -> tuple[dict[str, dict[str, Recipient]], dict[str, int]]:
        """For each room: user ID -> :class:`Recipient` of its joined members with
        pushers, and the joined member count of the rooms that have any and of
        ``also_count`` (rooms of invites)."""

        def read(txn: Transaction) -> tuple[dict[str, dict[str, Recipient]], dict[str, int]]:
            found: dict[str, dict[str, tuple[list[int], int]]] = {}
            for chunk in _chunks(sorted(room_ids)):
                marks = ", ".join("?" for _ in chunk)
                # An outlier membership has no stream position: counted as 0.
                txn.execute(
                    "SELECT r.room_id, p.user_id, p.id, COALESCE(e.stream_ordering, 0)"
                    " FROM rooms r"
                    " JOIN room_memberships m ON m.room_nid = r.room_nid"
                    " JOIN pushers p ON p.user_id = m.user_id"
                    " LEFT JOIN events e ON e.event_nid = m.event_nid"
                    f" WHERE r.room_id IN ({marks}) AND m.membership = 'join'",
                    tuple(chunk),
                )
                for room_id, user_id, pusher_id, since in txn.fetchall():
                    ids, _ = found.setdefault(room_id, {}).setdefault(user_id, ([], int(since)))
                    ids.append(int(pusher_id))
            recipients = {
                room_id: {
                    user_id: Recipient(tuple(sorted(ids)), since)
                    for user_id, (ids, since) in users.items()
                }
                for room_id, users in found.items()
            }
            counts: dict[str, int] = {}
            for chunk in _chunks(sorted(set(recipients) | set(also_count))):
                marks = ", ".join("?" for _ in chunk)
                txn.execute(
                    "SELECT r.room_id, COUNT(*) FROM rooms r"
                    " JOIN room_memberships m ON m.room_nid = r.room_nid"
                    f" WHERE r.room_id IN ({marks}) AND m.membership = 'join'"
                    " GROUP BY r.room_id",
                    tuple(chunk),
                )
                counts.update((room_id, int(count)) for room_id, count in txn.fetchall())
            return recipients, counts

        return await self._db.run_read("pusher_room_recipients", read)

    async def pusher_ids_of(self, user_id: str) -> list[int]:
        rows = await self._db.execute_read(
            "pusher_ids_of", "SELECT id FROM pushers WHERE user_id = ? ORDER BY id", user_id
        )
        return [int(row[0]) for row in rows]

    # --- the queue ---------------------------------------------------------------------

    async def enqueue(self, rows: Sequence[QueuedNotification], *, now: int) -> None:
        """Queue ``rows`` in one transaction; a row already queued (a replayed batch)
        or for a pusher deleted meanwhile is skipped."""

        def write(txn: Transaction) -> None:
            txn.executemany(
                "INSERT INTO pusher_queue"
                " (pusher_id, position, event_id, room_id, actions, queued_ts)"
                " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM pushers WHERE id = ?)"
                " ON CONFLICT (pusher_id, position) DO NOTHING",
                [
                    (
                        row.pusher_id,
                        row.position,
                        row.event_id,
                        row.room_id,
                        json.dumps(list(row.actions)),
                        now,
                        row.pusher_id,
                    )
                    for row in rows
                ],
            )

        await self._db.run_interaction("enqueue_notifications", write)

    async def pending(self, pusher_id: int, limit: int | None) -> list[PendingNotification]:
        """The pusher's queue, oldest first: the first ``limit`` rows (None: all)."""
        sql = (
            "SELECT position, event_id, room_id, actions, queued_ts FROM pusher_queue"
            " WHERE pusher_id = ? ORDER BY position"
        )
        if limit is None:
            rows = await self._db.execute_read("pending_notifications", sql, pusher_id)
        else:
            rows = await self._db.execute_read(
                "pending_notifications", sql + " LIMIT ?", pusher_id, limit
            )
        return [
            PendingNotification(
                position=int(position),
                event_id=event_id,
                room_id=room_id,
                actions=json.loads(actions),
                queued_ts=int(queued_ts),
            )
            for position, event_id, room_id, actions, queued_ts in rows
        ]

    async def has_pending(self, pusher_id: int) -> bool:
        rows = await self._db.execute_read(
            "has_pending_notifications",
            "SELECT 1 FROM pusher_queue WHERE pusher_id = ? LIMIT 1",
            pusher_id,
        )
        return bool(rows)

    async def done_up_to(self, pusher_id: int, position: int, state: DeliveryState) -> None:
        """Drop the pusher's queued notifications up to ``position`` and record its
        delivery state, in one transaction."""

        def write(txn: Transaction) -> None:
            txn.execute(
                "DELETE FROM pusher_queue WHERE pusher_id = ? AND position <= ?",
                (pusher_id, position),
            )
            _set_state_txn(txn, pusher_id, state)

        await self._db.run_interaction("pusher_done_up_to", write)

    async def trim_queue(self, pusher_id: int, *, queued_before: int, keep: int) -> int:
        """Drop the pusher's notifications queued before ``queued_before`` and all but
        its ``keep`` newest; how many went.  Bounds the queue of a pusher whose
        gateway stays down."""

        def write(txn: Transaction) -> int:
            txn.execute(
                "DELETE FROM pusher_queue WHERE pusher_id = ? AND queued_ts < ?",
                (pusher_id, queued_before),
            )
            dropped = max(txn.rowcount, 0)
            # Below the keep-th newest position; NULL (fewer rows) deletes nothing.
            txn.execute(
                "DELETE FROM pusher_queue WHERE pusher_id = ? AND position < ("
                " SELECT position FROM pusher_queue WHERE pusher_id = ?"
                " ORDER BY position DESC LIMIT 1 OFFSET ?)",
                (pusher_id, pusher_id, keep - 1),
            )
            return dropped + max(txn.rowcount, 0)

        return await self._db.run_interaction("trim_pusher_queue", write)

    async def set_delivery_state(self, pusher_id: int, state: DeliveryState) -> None:
        await self._db.run_interaction(
            "set_pusher_delivery_state", _set_state_txn, pusher_id, state
        )

    async def get_delivery_state(self, pusher_id: int) -> DeliveryState:
        rows = await self._db.execute_read(
            "get_pusher_delivery_state",
            "SELECT failures, failing_since, next_attempt_ts FROM pushers WHERE id = ?",
            pusher_id,
        )
        if not rows:
            return DeliveryState()
        failures, since, next_ts = rows[0]
        return DeliveryState(
            int(failures),
            None if since is None else int(since),
            None if next_ts is None else int(next_ts),
        )

    async def pushers_with_pending(self) -> dict[int, int | None]:
        """Pusher ID -> when to try next (None: now), of every pusher with a queue."""
        rows = await self._db.execute_read(
            "pushers_with_pending",
            "SELECT p.id, p.next_attempt_ts FROM pushers p"
            " WHERE EXISTS (SELECT 1 FROM pusher_queue q WHERE q.pusher_id = p.id)",
        )
        return {int(pusher_id): None if ts is None else int(ts) for pusher_id, ts in rows}

    # --- the Web Push key --------------------------------------------------------------

    async def get_or_store_vapid_key(self, candidate_pem: str, *, now: int) -> str:
        """The stored VAPID private key (PEM); ``candidate_pem`` becomes it if there is
        none yet (two processes starting at once agree on the first one written)."""

        def write(txn: Transaction) -> str:
            txn.execute(
                "INSERT INTO webpush_vapid_key (id, private_key_pem, created_ts)"
                " VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING",
                (candidate_pem, now),
            )
            txn.execute("SELECT private_key_pem FROM webpush_vapid_key WHERE id = 1")
            row = txn.fetchone()
            assert row is not None
            return str(row[0])

        return await self._db.run_interaction("get_or_store_vapid_key", write)


def _set_state_txn(txn: Transaction, pusher_id: int, state: DeliveryState) -> None:
    txn.execute(
        "UPDATE pushers SET failures = ?, failing_since = ?, next_attempt_ts = ? WHERE id = ?",
        (state.failures, state.failing_since, state.next_attempt_ts, pusher_id),
    )
