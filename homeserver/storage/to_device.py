"""Send-to-device messages waiting for their devices: SQL only.  Owns ``device_inbox``
and ``to_device_transactions`` (schema/0026_to_device.py).

A send is one transaction: its transaction-ID row, one inbox row per recipient
device and the durable EDUs carrying its messages for users of other servers
(``federation_outbound_edus``, through storage.federation_outbound's
``add_edus_txn``: a retry that finds the transaction ID finds them queued too), all
at one position of the ``to_device_stream`` sequence (the stream's tracker,
streams/positions.py, says up to where positions are committed).  Recipients are
resolved against ``devices`` in that transaction, so ``*`` means the devices the user
has when the send commits.  ``storage.devices`` calls :func:`delete_device_messages_txn`
/ :func:`delete_all_device_messages_txn` in its deletion transactions, so no message
outlives its device.

Two in-memory answers spare the database on every quiet ``/sync`` (docs/architecture.md,
the inventory): a :class:`StreamChangeCache` of each device's newest message position,
recorded as each send commits and before its position can become visible (as
storage/events.py does for rooms), and each device's "deleted up to" mark, so an
acknowledgement that has nothing left to delete issues no ``DELETE``.

spec: client-server-api/modules/send_to_device.md, _index.md#transaction-identifiers
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.device_rows import delete_device_rows_txn, delete_user_device_rows_txn
from homeserver.storage.federation_outbound import add_edus_txn
from homeserver.storage.transaction import Transaction
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.positions import LazyStreamPositions, PositionsWrite, StreamPositions

#: The sequence behind the ``to_device`` stream.
STREAM_SEQUENCE = "to_device_stream"
#: Matches the ``*`` device of a send: every device of the user.
ALL_DEVICES = "*"
#: Devices whose "deleted up to" mark is kept; past it the older half is forgotten
#: (a forgotten mark only costs one ``DELETE`` that finds nothing).
MAX_DELETION_MARKS = 200_000
#: Recipient users looked up per statement.
_USERS_PER_QUERY = 500

#: (user ID, device ID)
DeviceKey = tuple[str, str]
#: A durable EDU for another server: (destination, EDU type, content).
RemoteEdu = tuple[str, str, Mapping[str, Any]]


@attrs.frozen
class SendKey:
    """Who sent a request, for its transaction ID: the device, or the access token
    when the token has no device."""

    user_id: str
    #: ``''`` when the token has no device.
    device_id: str
    #: 0 for device-bound tokens (a refreshed token keeps the device's transactions).
    token_id: int


@attrs.frozen
class Enqueued:
    position: int
    #: The devices that got a message (unknown users and devices are skipped).
    recipients: list[DeviceKey]


@attrs.frozen
class StoredMessage:
    stream_id: int
    sender: str
    message_type: str
    content: dict[str, Any]


class ToDeviceStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._stream = LazyStreamPositions(STREAM_SEQUENCE, self._highest_stored)
        self._changes: StreamChangeCache[DeviceKey] | None = None
        #: Device -> every message at or below this position is deleted.
        self._deleted_up_to: dict[DeviceKey, int] = {}

    async def enqueue(
        self,
        sender: SendKey,
        message_type: str,
        txn_id: str,
        messages: Mapping[str, Mapping[str, dict[str, Any]]],
        *,
        now_ms: int,
        remote: Sequence[RemoteEdu] = (),
    ) -> Enqueued | None:
        """Queue ``messages`` (local user -> device ID or ``*`` -> content) from
        ``sender.user_id``, and the ``remote`` EDUs for other servers, once per
        transaction ID: None if ``txn_id`` was already used by this sender for this
        type (nothing is queued again).

        A device named both itself and through ``*`` gets its own message.  The
        position is returned once committed; it may not be visible yet (see
        :meth:`wait_until_visible`).
        """
        stream = await self._stream_positions()
        with stream.writing() as write:
            enqueued = await self._db.run_interaction(
                "enqueue_to_device",
                self._enqueue_txn,
                write,
                sender,
                message_type,
                txn_id,
                messages,
                now_ms,
                remote,
            )
            if enqueued is not None:
                # Before the block ends, so before the position can become visible: a
                # reader must never be told "nothing new" for a range holding it.
                assert self._changes is not None
                for device in enqueued.recipients:
                    self._changes.record(device, enqueued.position)
        return enqueued

    @staticmethod
    def _enqueue_txn(
        txn: Transaction,
        write: PositionsWrite,
        sender: SendKey,
        message_type: str,
        txn_id: str,
        messages: Mapping[str, Mapping[str, dict[str, Any]]],
        now_ms: int,
        remote: Sequence[RemoteEdu],
    ) -> Enqueued | None:
        position = write.allocate(txn)
        txn.execute(
            "INSERT INTO to_device_transactions"
            " (user_id, device_id, token_id, message_type, txn_id, stream_id, created_ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                sender.user_id,
                sender.device_id,
                sender.token_id,
                message_type,
                txn_id,
                position,
                now_ms,
            ),
        )
        if txn.rowcount == 0:
            # A retry: the first attempt's messages are queued (or delivered) already.
            # On PostgreSQL a concurrent first attempt holds the key until it commits.
            return None
        if remote:
            add_edus_txn(txn, remote, now_ms)
        existing = _devices_of(txn, list(messages))
        rows: list[tuple[str, str, int, str, str, str]] = []
        for user_id, by_device in messages.items():
            devices = existing.get(user_id, set())
            targets: dict[str, dict[str, Any]] = {}
            if ALL_DEVICES in by_device:
                targets = dict.fromkeys(devices, by_device[ALL_DEVICES])
            for device_id, content in by_device.items():
                if device_id != ALL_DEVICES and device_id in devices:
                    targets[device_id] = content
            for device_id, content in sorted(targets.items()):
                rows.append(
                    (user_id, device_id, position, sender.user_id, message_type, _encode(content))
                )
        txn.executemany(
            "INSERT INTO device_inbox"
            " (user_id, device_id, stream_id, sender, message_type, content)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        return Enqueued(position, [(row[0], row[1]) for row in rows])

    async def prune_transactions(self, sent_before_ms: int) -> int:
        """Forget the transaction IDs of sends before ``sent_before_ms``; how many."""

        def prune(txn: Transaction) -> int:
            txn.execute(
                "DELETE FROM to_device_transactions WHERE created_ts < ?", (sent_before_ms,)
            )
            return txn.rowcount

        return await self._db.run_interaction("prune_to_device_transactions", prune)

    async def wait_until_visible(self, position: int) -> None:
        """Wait until every position up to ``position`` is committed or abandoned:
        only then may it be announced."""
        await (await self._stream_positions()).wait_until_visible(position)

    async def current_position(self) -> int:
        """Every send up to this position is committed (or abandoned)."""
        return (await self._stream_positions()).current

    async def has_messages_after(self, user_id: str, device_id: str, position: int) -> bool | None:
        """Whether messages were queued for the device after ``position`` (delivered
        or not), from memory; None when the cache cannot tell (ask the database)."""
        await self._stream_positions()
        assert self._changes is not None
        return self._changes.has_changed_since((user_id, device_id), position)

    async def get_messages(
        self, user_id: str, device_id: str, after: int, up_to: int, limit: int
    ) -> list[StoredMessage]:
        """The device's messages in ``(after, up_to]``, oldest first, at most ``limit``."""
        rows = await self._db.execute_read(
            "get_to_device_messages",
            "SELECT stream_id, sender, message_type, content FROM device_inbox"
            " WHERE user_id = ? AND device_id = ? AND stream_id > ? AND stream_id <= ?"
            " ORDER BY stream_id LIMIT ?",
            user_id,
            device_id,
            after,
            up_to,
            limit,
        )
        return [
            StoredMessage(int(stream_id), sender, message_type, _decode(content))
            for stream_id, sender, message_type, content in rows
        ]

    async def delete_messages_up_to(self, user_id: str, device_id: str, up_to: int) -> None:
        """Delete the device's messages at or below ``up_to``, which must be a visible
        position (so no message can be queued at or below it later)."""
        await self._stream_positions()
        changes = self._changes
        assert changes is not None
        device = (user_id, device_id)
        done = self._deleted_up_to.get(device)
        if done is not None and (up_to <= done or changes.has_changed_since(device, done) is False):
            # Nothing was queued for the device after everything up to ``done`` went.
            self._mark_deleted(device, up_to)
            return
        await self._db.execute(
            "delete_to_device_messages",
            "DELETE FROM device_inbox WHERE user_id = ? AND device_id = ? AND stream_id <= ?",
            user_id,
            device_id,
            up_to,
        )
        self._mark_deleted(device, up_to)

    def _mark_deleted(self, device: DeviceKey, up_to: int) -> None:
        # Concurrent acknowledgements finish in any order: keep the highest mark.
        done = max(up_to, self._deleted_up_to.pop(device, 0))
        self._deleted_up_to[device] = done
        if len(self._deleted_up_to) > MAX_DELETION_MARKS:
            kept = list(self._deleted_up_to.items())[len(self._deleted_up_to) // 2 :]
            self._deleted_up_to = dict(kept)

    async def _stream_positions(self) -> StreamPositions:
        stream = await self._stream.get()
        if self._changes is None:
            # Every send from here on goes through this store: the cache knows each
            # device's messages queued after the position stored now.
            self._changes = StreamChangeCache(stream.current)
        return stream

    async def _highest_stored(self) -> int:
        # Inbox rows go once delivered and transaction rows with their sender's device:
        # the highest of both is the best start; positions handed out later are above
        # anything a client holds (the sequence never goes back).
        rows = await self._db.execute(
            "to_device_max_stream_id",
            "SELECT (SELECT COALESCE(MAX(stream_id), 0) FROM device_inbox),"
            " (SELECT COALESCE(MAX(stream_id), 0) FROM to_device_transactions)",
        )
        return max(int(rows[0][0]), int(rows[0][1]))


def delete_device_messages_txn(txn: Transaction, user_id: str, device_ids: Sequence[str]) -> None:
    """Delete the devices' waiting messages and send transactions (called where
    devices are deleted)."""
    delete_device_rows_txn(txn, _TABLES, user_id, device_ids)


def delete_all_device_messages_txn(
    txn: Transaction, user_id: str, except_device_id: str | None = None
) -> None:
    """:func:`delete_device_messages_txn` for every device of the user but
    ``except_device_id`` (and the transactions of tokens without a device)."""
    delete_user_device_rows_txn(txn, _TABLES, user_id, except_device_id)


_TABLES = ("device_inbox", "to_device_transactions")


def _devices_of(txn: Transaction, user_ids: list[str]) -> dict[str, set[str]]:
    devices: dict[str, set[str]] = {}
    for start in range(0, len(user_ids), _USERS_PER_QUERY):
        chunk = user_ids[start : start + _USERS_PER_QUERY]
        placeholders = ", ".join("?" * len(chunk))
        txn.execute(
            f"SELECT user_id, device_id FROM devices WHERE user_id IN ({placeholders})", chunk
        )
        for user_id, device_id in txn.fetchall():
            devices.setdefault(user_id, set()).add(device_id)
    return devices


def _encode(content: dict[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def _decode(text: str) -> dict[str, Any]:
    content = json.loads(text)
    assert isinstance(content, dict)
    return content
