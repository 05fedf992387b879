"""Account data (global and per room, room tags included): SQL only.  Owns ``account_data``.

Each row holds the newest content of one (user, room, type) and the
``account_data_stream`` position of its last change, taken from that sequence inside
the writing transaction; the stream's tracker (streams/positions.py) says up to where
they are all committed.  Global account data is stored with the room ID ``''``.

spec: client-server-api/_index.md#client-config
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction
from homeserver.streams.positions import LazyStreamPositions, PositionsWrite

#: The ``room_id`` column of global account data.
GLOBAL = ""
#: The sequence behind the account data stream.
STREAM_SEQUENCE = "account_data_stream"

#: Given the current content (None if unset), the new content, or None for no change.
ContentUpdate = Callable[[dict[str, Any] | None], dict[str, Any] | None]


@attrs.frozen
class AccountDataRow:
    #: None for global account data.
    room_id: str | None
    data_type: str
    content: dict[str, Any]
    stream_id: int


def _encode(content: dict[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def _decode(text: str) -> dict[str, Any]:
    content = json.loads(text)
    assert isinstance(content, dict)
    return content


class AccountDataStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._stream = LazyStreamPositions(STREAM_SEQUENCE, self._highest_stored)

    async def get(self, user_id: str, room_id: str | None, data_type: str) -> dict[str, Any] | None:
        """The content of one type of account data (``room_id`` None: global), or None."""
        rows = await self._db.execute_read(
            "get_account_data",
            "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND data_type = ?",
            user_id,
            room_id or GLOBAL,
            data_type,
        )
        return _decode(rows[0][0]) if rows else None

    async def set(
        self, user_id: str, room_id: str | None, data_type: str, content: dict[str, Any]
    ) -> int:
        """Store ``content`` at a new stream position, which is returned once committed
        (it may not be visible yet: see :meth:`wait_until_visible`)."""
        stream = await self._stream.get()
        with stream.writing() as write:
            return await self._db.run_interaction(
                "set_account_data",
                self._set_txn,
                write,
                user_id,
                room_id or GLOBAL,
                data_type,
                content,
            )

    async def update(
        self, user_id: str, room_id: str | None, data_type: str, update: ContentUpdate
    ) -> int | None:
        """Read-modify-write in one transaction (a conflict re-runs it, and ``update``).

        Returns the new stream position (as :meth:`set`), or None if ``update`` made
        no change.
        """

        def txn_func(txn: Transaction, write: PositionsWrite) -> int | None:
            room = room_id or GLOBAL
            txn.execute(
                "SELECT content FROM account_data"
                " WHERE user_id = ? AND room_id = ? AND data_type = ?",
                (user_id, room, data_type),
            )
            row = txn.fetchone()
            new_content = update(_decode(row[0]) if row else None)
            if new_content is None:
                return None
            return self._set_txn(txn, write, user_id, room, data_type, new_content)

        stream = await self._stream.get()
        with stream.writing() as write:
            return await self._db.run_interaction("update_account_data", txn_func, write)

    async def wait_until_visible(self, position: int) -> None:
        """Wait until every position up to ``position`` is committed or abandoned:
        only then may it be announced."""
        await (await self._stream.get()).wait_until_visible(position)

    @staticmethod
    def _set_txn(
        txn: Transaction,
        write: PositionsWrite,
        user_id: str,
        room_id: str,
        data_type: str,
        content: dict[str, Any],
    ) -> int:
        stream_id = write.allocate(txn)
        txn.execute(
            "INSERT INTO account_data (user_id, room_id, data_type, stream_id, content)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (user_id, room_id, data_type)"
            " DO UPDATE SET stream_id = excluded.stream_id, content = excluded.content",
            (user_id, room_id, data_type, stream_id, _encode(content)),
        )
        return stream_id

    async def changes(
        self, user_id: str, from_stream_id: int, to_stream_id: int
    ) -> list[AccountDataRow]:
        """The user's account data whose last change lies in ``(from, to]``, oldest first."""
        rows = await self._db.execute_read(
            "account_data_changes",
            "SELECT room_id, data_type, content, stream_id FROM account_data"
            " WHERE user_id = ? AND stream_id > ? AND stream_id <= ?"
            " ORDER BY stream_id",
            user_id,
            from_stream_id,
            to_stream_id,
        )
        return [
            AccountDataRow(room_id or None, data_type, _decode(content), stream_id)
            for room_id, data_type, content, stream_id in rows
        ]

    async def get_max_stream_id(self) -> int:
        """The position up to which every change of the account data stream is
        committed (or abandoned): readers never look past it."""
        return (await self._stream.get()).current

    async def _highest_stored(self) -> int:
        # Rows are updated in place, and the latest change carries the highest position.
        rows = await self._db.execute(
            "account_data_max_stream_id", "SELECT MAX(stream_id) FROM account_data"
        )
        return int(rows[0][0] or 0)
