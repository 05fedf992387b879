"""Deleting what tables keep per device, inside the transaction that deletes devices.

Several stores keep rows keyed by ``(user_id, device_id)`` that must go with their
device (keys, waiting to-device messages); storage.devices calls each store's
deletion function in its own transactions, and those use these two.
"""

from __future__ import annotations

from collections.abc import Sequence

from homeserver.storage.transaction import Transaction


def delete_device_rows_txn(
    txn: Transaction, tables: Sequence[str], user_id: str, device_ids: Sequence[str]
) -> None:
    """Delete the rows of ``device_ids`` from each of ``tables``."""
    pairs = [(user_id, device_id) for device_id in device_ids]
    for table in tables:
        txn.executemany(f"DELETE FROM {table} WHERE user_id = ? AND device_id = ?", pairs)


def delete_user_device_rows_txn(
    txn: Transaction, tables: Sequence[str], user_id: str, except_device_id: str | None
) -> None:
    """Delete the rows of every device of the user but ``except_device_id`` from
    each of ``tables``."""
    for table in tables:
        if except_device_id is None:
            txn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        else:
            txn.execute(
                f"DELETE FROM {table} WHERE user_id = ? AND device_id <> ?",
                (user_id, except_device_id),
            )
