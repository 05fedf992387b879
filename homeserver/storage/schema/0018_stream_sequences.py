"""Owners: storage.events, storage.receipts and storage.account_data.  Every stored
stream takes its positions from its sequence (streams/positions.py).

Events used to be numbered in the process, so ``events_stream`` never moved; each
stream's sequence is advanced past the highest position already stored, so an
upgraded database continues above it.  (Receipts and account data always used their
sequences; advancing them is a no-op kept for databases written by other means.)
"""

from homeserver.storage.transaction import Transaction

#: sequence, table, position column
STREAMS = (
    ("events_stream", "events", "stream_ordering"),
    ("receipts_stream", "receipts", "stream_id"),
    ("account_data_stream", "account_data", "stream_id"),
)


def run(txn: Transaction) -> None:
    for sequence, table, column in STREAMS:
        txn.execute(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")
        row = txn.fetchone()
        assert row is not None
        txn.engine.advance_sequence(txn, sequence, int(row[0]))
