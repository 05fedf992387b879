"""Cross-signing keys and the signatures uploaded for them: SQL only.

Owns ``e2e_cross_signing_keys`` and ``e2e_cross_signing_signatures``
(schema/0028_cross_signing.sql).  Key objects are stored as the canonical JSON text
the handler verified; this module never parses them.

spec: client-server-api/modules/end_to_end_encryption.md#cross-signing,
#post_matrixclientv3keysdevice_signingupload, #post_matrixclientv3keyssignaturesupload
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from homeserver.storage.database import Database
from homeserver.storage.transaction import Transaction

MASTER = "master"

#: Users per ``IN (...)`` list: well under SQLite's bound-parameter limit.
_BATCH = 500


@attrs.frozen
class StoredCrossSigningKey:
    user_id: str
    #: ``master``, ``self_signing`` or ``user_signing``.
    usage: str
    #: The unpadded-base64 Ed25519 public key (the key ID without ``ed25519:``).
    public_key: str
    key_json: str


@attrs.frozen
class StoredSignature:
    target_user_id: str
    #: A device ID, or a master key's public key.
    target_key_id: str
    signer_user_id: str
    #: ``ed25519:<public key or device ID>``, as in ``signatures``.
    signer_key_id: str
    #: The Ed25519 public key of the object signed: the signature is only served
    #: while the target still has it.
    target_ed25519: str
    signature: str


@attrs.frozen
class NewKey:
    public_key: str
    key_json: str


def is_cross_signing_key_txn(txn: Transaction, user_id: str, public_key: str) -> bool:
    """Whether ``public_key`` is one of the user's cross-signing keys (a device may
    not take it as its ID: storage.devices asks before creating a device)."""
    txn.execute(
        "SELECT 1 FROM e2e_cross_signing_keys WHERE user_id = ? AND key_id = ?",
        (user_id, public_key),
    )
    return txn.fetchone() is not None


class CrossSigningStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_user_keys(self, user_id: str) -> dict[str, StoredCrossSigningKey]:
        """A user's current cross-signing keys by usage."""
        keys = await self._db.run_read("get_cross_signing_keys", _keys_txn, [user_id])
        return {key.usage: key for key in keys}

    async def get_keys(self, user_ids: Sequence[str]) -> list[StoredCrossSigningKey]:
        """The current cross-signing keys of the users (batched)."""
        return await self._db.run_read("get_cross_signing_keys_for", _keys_txn, user_ids)

    async def device_ids_in_use(self, user_id: str, candidates: Sequence[str]) -> set[str]:
        """Which of ``candidates`` are IDs of the user's devices."""
        if not candidates:
            return set()
        rows = await self._db.execute_read(
            "cross_signing_device_ids_in_use",
            "SELECT device_id FROM devices WHERE user_id = ?"
            f" AND device_id IN ({','.join('?' * len(candidates))})",
            user_id,
            *candidates,
        )
        return {str(row[0]) for row in rows}

    async def replace_keys(
        self,
        user_id: str,
        *,
        expected: Mapping[str, str],
        new: Mapping[str, NewKey],
        drop: Sequence[str],
        now_ms: int,
    ) -> bool:
        """Store ``new`` keys (by usage) and delete the ``drop`` usages, in one
        transaction, provided the user's stored keys are still ``expected`` (usage →
        key JSON); False, writing nothing, if they changed meanwhile.

        The signatures that only made sense for a replaced or dropped key go with it:
        those a self-signing or user-signing key made, and those made of a master key.
        """

        def write(txn: Transaction) -> bool:
            current = {key.usage: key for key in _keys_txn(txn, [user_id])}
            if {usage: key.key_json for usage, key in current.items()} != dict(expected):
                return False
            for usage in [*new, *drop]:
                old = current.get(usage)
                if old is None or (usage in new and new[usage].public_key == old.public_key):
                    continue
                if usage == MASTER:
                    txn.execute(
                        "DELETE FROM e2e_cross_signing_signatures"
                        " WHERE target_user_id = ? AND target_key_id = ?",
                        (user_id, old.public_key),
                    )
                else:
                    txn.execute(
                        "DELETE FROM e2e_cross_signing_signatures"
                        " WHERE signer_user_id = ? AND signer_key_id = ?",
                        (user_id, f"ed25519:{old.public_key}"),
                    )
            if drop:
                txn.executemany(
                    "DELETE FROM e2e_cross_signing_keys WHERE user_id = ? AND key_usage = ?",
                    [(user_id, usage) for usage in drop],
                )
            txn.executemany(
                "INSERT INTO e2e_cross_signing_keys"
                " (user_id, key_usage, key_id, key_json, added_ts) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, key_usage) DO UPDATE SET key_id = excluded.key_id,"
                " key_json = excluded.key_json, added_ts = excluded.added_ts",
                [
                    (user_id, usage, key.public_key, key.key_json, now_ms)
                    for usage, key in new.items()
                ],
            )
            return True

        return await self._db.run_interaction("replace_cross_signing_keys", write)

    async def add_signatures(self, signatures: Sequence[StoredSignature]) -> set[str]:
        """Store signatures; returns the users whose keys gained a new one (or one
        that replaced a different one)."""
        if not signatures:
            return set()

        def write(txn: Transaction) -> set[str]:
            added: set[str] = set()
            for sig in signatures:
                txn.execute(
                    "INSERT INTO e2e_cross_signing_signatures (target_user_id, target_key_id,"
                    " signer_user_id, signer_key_id, target_ed25519, signature)"
                    " VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id)"
                    " DO UPDATE SET target_ed25519 = excluded.target_ed25519,"
                    " signature = excluded.signature"
                    " WHERE e2e_cross_signing_signatures.signature <> excluded.signature"
                    " OR e2e_cross_signing_signatures.target_ed25519 <> excluded.target_ed25519"
                    " RETURNING 1",
                    (
                        sig.target_user_id,
                        sig.target_key_id,
                        sig.signer_user_id,
                        sig.signer_key_id,
                        sig.target_ed25519,
                        sig.signature,
                    ),
                )
                if txn.fetchall():
                    added.add(sig.target_user_id)
            return added

        return await self._db.run_interaction("add_cross_signing_signatures", write)

    async def query(
        self, user_ids: Sequence[str], viewer: str
    ) -> tuple[list[StoredCrossSigningKey], list[StoredSignature]]:
        """For ``/keys/query``, in one read transaction: the users' cross-signing keys,
        and the signatures of their keys that ``viewer`` may see — those the key's
        owner made, and those ``viewer`` made (spec: "Key and signature security")."""

        def read(txn: Transaction) -> tuple[list[StoredCrossSigningKey], list[StoredSignature]]:
            keys = _keys_txn(txn, user_ids)
            signatures: list[StoredSignature] = []
            wanted = list(dict.fromkeys(user_ids))
            for start in range(0, len(wanted), _BATCH):
                part = wanted[start : start + _BATCH]
                txn.execute(
                    "SELECT target_user_id, target_key_id, signer_user_id, signer_key_id,"
                    " target_ed25519, signature FROM e2e_cross_signing_signatures"
                    f" WHERE target_user_id IN ({','.join('?' * len(part))})"
                    " AND (signer_user_id = target_user_id OR signer_user_id = ?)",
                    (*part, viewer),
                )
                signatures.extend(StoredSignature(*row) for row in txn.fetchall())
            return keys, signatures

        return await self._db.run_read("query_cross_signing", read)

    async def forget_user(self, user_id: str) -> None:
        """Delete a user's cross-signing keys, the signatures of them and the
        signatures they made (account deactivation)."""

        def delete(txn: Transaction) -> None:
            txn.execute("DELETE FROM e2e_cross_signing_keys WHERE user_id = ?", (user_id,))
            txn.execute(
                "DELETE FROM e2e_cross_signing_signatures"
                " WHERE target_user_id = ? OR signer_user_id = ?",
                (user_id, user_id),
            )

        await self._db.run_interaction("forget_cross_signing_user", delete)


def _keys_txn(txn: Transaction, user_ids: Sequence[str]) -> list[StoredCrossSigningKey]:
    found: list[StoredCrossSigningKey] = []
    wanted = list(dict.fromkeys(user_ids))
    for start in range(0, len(wanted), _BATCH):
        part = wanted[start : start + _BATCH]
        txn.execute(
            "SELECT user_id, key_usage, key_id, key_json FROM e2e_cross_signing_keys"
            f" WHERE user_id IN ({','.join('?' * len(part))})",
            part,
        )
        found.extend(StoredCrossSigningKey(*row) for row in txn.fetchall())
    return found
