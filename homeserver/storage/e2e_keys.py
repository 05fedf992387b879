"""End-to-end encryption keys that devices publish: SQL only.

Owns ``e2e_device_keys``, ``e2e_one_time_keys`` and ``e2e_fallback_keys``
(schema/0025_e2e_keys.sql).  Key objects are stored as the canonical JSON text the
handler verified; this module never parses them.  ``storage.devices`` calls
:func:`delete_device_keys_txn` / :func:`delete_all_device_keys_txn` in its deletion
transactions, so no key outlives its device.

spec: client-server-api/modules/end_to_end_encryption.md, #post_matrixclientv3keysupload,
#post_matrixclientv3keysquery, #post_matrixclientv3keysclaim
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from homeserver.storage.database import Database
from homeserver.storage.device_rows import delete_device_rows_txn, delete_user_device_rows_txn
from homeserver.storage.transaction import Transaction

#: (algorithm, key_id, canonical JSON of the key object)
KeyRow = tuple[str, str, str]


@attrs.frozen
class UploadResult:
    #: ``algorithm:key_id`` of uploaded one-time keys already stored with other
    #: content; when any, nothing was written.
    conflicts: list[str]
    #: Unclaimed one-time keys per algorithm after the upload.
    counts: dict[str, int]


@attrs.frozen
class StoredDeviceKeys:
    user_id: str
    device_id: str
    key_json: str
    display_name: str | None


@attrs.frozen
class ClaimedKey:
    user_id: str
    device_id: str
    algorithm: str
    key_id: str
    key_json: str


class E2eKeysStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_device_keys(self, user_id: str, device_id: str) -> str | None:
        """The stored DeviceKeys JSON of a device, if it uploaded any."""
        rows = await self._db.execute(
            "get_device_keys",
            "SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?",
            user_id,
            device_id,
        )
        return str(rows[0][0]) if rows else None

    async def upload(
        self,
        user_id: str,
        device_id: str,
        *,
        device_keys: str | None,
        one_time_keys: Sequence[KeyRow],
        fallback_keys: Sequence[KeyRow],
        now_ms: int,
    ) -> UploadResult:
        """Store a device's upload in one transaction and count its one-time keys.

        One-time keys already stored with the same content are left as they are (a
        retried upload); if any is stored with other content nothing is written and
        the conflicts are returned.  A fallback key replaces the device's key of its
        algorithm and is unused, unless it is the very key already stored (then its
        ``used`` flag stays: re-sending it does not make it fresh).
        """

        def write(txn: Transaction) -> UploadResult:
            conflicts: list[str] = []
            new_keys: list[KeyRow] = []
            for start in range(0, len(one_time_keys), 200):
                part = one_time_keys[start : start + 200]
                # Matched per (algorithm, key_id): one OR term per key, as
                # row-value IN lists are not portable to older SQLite.
                terms = " OR ".join("(algorithm = ? AND key_id = ?)" for _ in part)
                txn.execute(
                    "SELECT algorithm, key_id, key_json FROM e2e_one_time_keys"
                    f" WHERE user_id = ? AND device_id = ? AND ({terms})",
                    (user_id, device_id, *(v for alg, kid, _ in part for v in (alg, kid))),
                )
                stored = {(alg, kid): text for alg, kid, text in txn.fetchall()}
                for algorithm, key_id, text in part:
                    existing = stored.get((algorithm, key_id))
                    if existing is None:
                        new_keys.append((algorithm, key_id, text))
                    elif existing != text:
                        conflicts.append(f"{algorithm}:{key_id}")
            if conflicts:
                return UploadResult(conflicts, _counts_txn(txn, user_id, device_id))
            if device_keys is not None:
                txn.execute(
                    "INSERT INTO e2e_device_keys (user_id, device_id, key_json, added_ts)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE"
                    " SET key_json = excluded.key_json, added_ts = excluded.added_ts"
                    " WHERE e2e_device_keys.key_json <> excluded.key_json",
                    (user_id, device_id, device_keys, now_ms),
                )
            if new_keys:
                txn.execute(
                    "SELECT COALESCE(MAX(upload_order), 0) + 1 FROM e2e_one_time_keys"
                    " WHERE user_id = ? AND device_id = ?",
                    (user_id, device_id),
                )
                row = txn.fetchone()
                order = int(row[0]) if row is not None else 1
                # DO NOTHING: a concurrent identical upload may have stored the key.
                txn.executemany(
                    "INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id,"
                    " key_json, upload_order) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (user_id, device_id, algorithm, key_id) DO NOTHING",
                    [(user_id, device_id, alg, kid, text, order) for alg, kid, text in new_keys],
                )
            if fallback_keys:
                txn.executemany(
                    "INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id,"
                    " key_json, used) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (user_id, device_id, algorithm) DO UPDATE"
                    " SET key_id = excluded.key_id, key_json = excluded.key_json, used = excluded.used"
                    " WHERE e2e_fallback_keys.key_id <> excluded.key_id"
                    " OR e2e_fallback_keys.key_json <> excluded.key_json",
                    [
                        (user_id, device_id, alg, kid, text, False)
                        for alg, kid, text in fallback_keys
                    ],
                )
            return UploadResult([], _counts_txn(txn, user_id, device_id))

        return await self._db.run_interaction("upload_e2e_keys", write)

    async def count_one_time_keys(self, user_id: str, device_id: str) -> dict[str, int]:
        """Unclaimed one-time keys of a device per algorithm."""
        return await self._db.run_read("count_one_time_keys", _counts_txn, user_id, device_id)

    async def sync_key_state(
        self, user_id: str, device_id: str
    ) -> tuple[dict[str, int], list[str]]:
        """For ``/sync``, in one query: unclaimed one-time keys per algorithm, and the
        algorithms of the device's unused fallback keys."""
        rows = await self._db.execute_read(
            "sync_e2e_key_state",
            "SELECT algorithm, COUNT(*), 0 FROM e2e_one_time_keys"
            " WHERE user_id = ? AND device_id = ? GROUP BY algorithm"
            " UNION ALL SELECT algorithm, 0, 1 FROM e2e_fallback_keys"
            " WHERE user_id = ? AND device_id = ? AND used = ?",
            user_id,
            device_id,
            user_id,
            device_id,
            False,
        )
        counts = {str(alg): int(n) for alg, n, fallback in rows if not fallback}
        unused = sorted(str(alg) for alg, _, fallback in rows if fallback)
        return counts, unused

    async def get_device_keys_for(
        self, queries: Sequence[tuple[str, Sequence[str]]]
    ) -> list[StoredDeviceKeys]:
        """Stored device keys of ``(user, device IDs)`` pairs; no device IDs: all the
        user's devices.  Each with the device's display name."""

        def read(txn: Transaction) -> list[StoredDeviceKeys]:
            found: list[StoredDeviceKeys] = []
            select = (
                "SELECT k.user_id, k.device_id, k.key_json, d.display_name"
                " FROM e2e_device_keys k LEFT JOIN devices d"
                " ON d.user_id = k.user_id AND d.device_id = k.device_id WHERE k.user_id = ?"
            )
            for user_id, device_ids in queries:
                if not device_ids:
                    txn.execute(select, (user_id,))
                    found.extend(StoredDeviceKeys(*row) for row in txn.fetchall())
                    continue
                wanted = list(dict.fromkeys(device_ids))
                for start in range(0, len(wanted), 500):
                    part = wanted[start : start + 500]
                    txn.execute(
                        f"{select} AND k.device_id IN ({','.join('?' * len(part))})",
                        (user_id, *part),
                    )
                    found.extend(StoredDeviceKeys(*row) for row in txn.fetchall())
            return found

        return await self._db.run_read("get_device_keys_for", read)

    async def claim(self, wanted: Sequence[tuple[str, str, str]]) -> list[ClaimedKey]:
        """Claim one key for each ``(user, device, algorithm)``, all in one transaction:
        the device's oldest one-time key of the algorithm, deleted as it is read, or
        else its fallback key, marked used.  Devices with neither get nothing.

        Each one-time key is handed out at most once however many claims run at
        once.  SQLite: the single write connection serialises claims.  PostgreSQL:
        the key to take is picked with ``FOR UPDATE SKIP LOCKED`` in a READ COMMITTED
        transaction (as a job queue does), so concurrent claimers each lock a
        different row rather than all choosing the same one and failing to serialise.
        """
        postgres = self._db.engine.dialect == "postgres"
        lock = " FOR UPDATE SKIP LOCKED" if postgres else ""
        take_one_time = (
            "DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?"
            " AND key_id = (SELECT key_id FROM e2e_one_time_keys"
            " WHERE user_id = ? AND device_id = ? AND algorithm = ?"
            f" ORDER BY upload_order, key_id LIMIT 1{lock}) RETURNING key_id, key_json"
        )

        def claim(txn: Transaction) -> list[ClaimedKey]:
            if postgres:
                # Must precede every other statement of the transaction.
                txn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            claimed: list[ClaimedKey] = []
            for user_id, device_id, algorithm in wanted:
                txn.execute(take_one_time, (user_id, device_id, algorithm) * 2)
                row = txn.fetchone()
                if row is None:
                    txn.execute(
                        "UPDATE e2e_fallback_keys SET used = ?"
                        " WHERE user_id = ? AND device_id = ? AND algorithm = ?"
                        " RETURNING key_id, key_json",
                        (True, user_id, device_id, algorithm),
                    )
                    row = txn.fetchone()
                if row is not None:
                    claimed.append(ClaimedKey(user_id, device_id, algorithm, row[0], row[1]))
            return claimed

        return await self._db.run_interaction("claim_e2e_keys", claim)


def _counts_txn(txn: Transaction, user_id: str, device_id: str) -> dict[str, int]:
    txn.execute(
        "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys"
        " WHERE user_id = ? AND device_id = ? GROUP BY algorithm",
        (user_id, device_id),
    )
    return {str(alg): int(n) for alg, n in txn.fetchall()}


_TABLES = ("e2e_device_keys", "e2e_one_time_keys", "e2e_fallback_keys")


def delete_device_keys_txn(txn: Transaction, user_id: str, device_ids: Sequence[str]) -> None:
    """Delete every key of the devices (called where devices are deleted)."""
    delete_device_rows_txn(txn, _TABLES, user_id, device_ids)


def delete_all_device_keys_txn(
    txn: Transaction, user_id: str, except_device_id: str | None = None
) -> None:
    """Delete the keys of every device of the user but ``except_device_id``."""
    delete_user_device_rows_txn(txn, _TABLES, user_id, except_device_id)
