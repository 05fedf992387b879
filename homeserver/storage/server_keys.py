"""Other servers' signing-key responses: SQL only.  Owns ``server_key_responses``
(schema/0034_server_keys.sql).

A response is stored once per key it lists and per server it came from (the origin,
or a notary), as the canonical JSON received.  The keyring reads keys back from it
after a restart; the notary serves the JSON again verbatim.

spec: server-server-api.md#retrieving-server-keys
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction

#: Key IDs per query: a statement's parameters stay well under SQLite's limit.
_BATCH = 100


@attrs.frozen
class StoredKeyResponse:
    """The newest stored response listing one key of a server."""

    server_name: str
    key_id: str
    from_server: str
    ts_added_ms: int
    #: valid_until_ts of the response for a current key; expired_ts for an old one.
    ts_valid_until_ms: int
    #: The signed response, canonical JSON.
    key_json: str


class ServerKeyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def store_key_response(
        self,
        *,
        server_name: str,
        from_server: str,
        ts_added_ms: int,
        valid_until_by_key: Mapping[str, int],
        key_json: str,
    ) -> None:
        """Record one response for each of its keys (``key ID -> valid until``),
        replacing what ``from_server`` told us about them before."""
        if not valid_until_by_key:
            return

        def store(txn: Transaction) -> None:
            txn.executemany(
                "INSERT INTO server_key_responses"
                " (server_name, key_id, from_server, ts_added_ms, ts_valid_until_ms, key_json)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (server_name, key_id, from_server) DO UPDATE SET"
                " ts_added_ms = excluded.ts_added_ms,"
                " ts_valid_until_ms = excluded.ts_valid_until_ms,"
                " key_json = excluded.key_json",
                [
                    (server_name, key_id, from_server, ts_added_ms, valid_until, key_json)
                    for key_id, valid_until in valid_until_by_key.items()
                ],
            )

        await self._db.run_interaction("store_server_key_response", store)

    async def get_key_responses(
        self, server_name: str, key_ids: Collection[str] | None = None
    ) -> dict[str, StoredKeyResponse]:
        """By key ID, the most recently received response listing it (from whichever
        server gave it to us); every key of ``server_name`` when ``key_ids`` is None."""
        rows: list[tuple[Any, ...]] = []
        select = (
            "SELECT key_id, from_server, ts_added_ms, ts_valid_until_ms, key_json"
            " FROM server_key_responses WHERE server_name = ?"
        )
        if key_ids is None:
            rows = await self._db.execute_read("get_server_key_responses", select, server_name)
        else:
            wanted = sorted(set(key_ids))
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                rows += await self._db.execute_read(
                    "get_server_key_responses",
                    f"{select} AND key_id IN ({', '.join('?' for _ in batch)})",
                    server_name,
                    *batch,
                )
        newest: dict[str, StoredKeyResponse] = {}
        for key_id, from_server, ts_added_ms, ts_valid_until_ms, key_json in rows:
            stored = StoredKeyResponse(
                server_name,
                str(key_id),
                str(from_server),
                int(ts_added_ms),
                int(ts_valid_until_ms),
                str(key_json),
            )
            known = newest.get(stored.key_id)
            if known is None or stored.ts_added_ms > known.ts_added_ms:
                newest[stored.key_id] = stored
        return newest
