"""Owner: storage.receipts.  Read receipts and the ``receipts`` stream.

One row per (room, user, receipt type, thread): only the latest receipt matters, so
updating it in place keeps the table as small as the number of readers, not reads.
``thread_id`` is ``''`` for an unthreaded receipt (a primary key column cannot be
NULL).  ``event_stream_ordering`` is the receipted event's position in the events
stream, so unread counts compare stream positions without looking the event up.
``stream_id`` is the position of the latest change in the ``receipts`` stream
(sequence ``receipts_stream``).

spec: client-server-api/_index.md#receipts
"""

from homeserver.storage.transaction import Transaction


def run(txn: Transaction) -> None:
    txn.execute(
        "CREATE TABLE receipts ("
        " room_nid BIGINT NOT NULL,"
        " user_id TEXT NOT NULL,"
        " receipt_type TEXT NOT NULL,"
        " thread_id TEXT NOT NULL,"
        " event_id TEXT NOT NULL,"
        " event_stream_ordering BIGINT,"
        " ts BIGINT NOT NULL,"
        " stream_id BIGINT NOT NULL UNIQUE,"
        " PRIMARY KEY (room_nid, user_id, receipt_type, thread_id))"
    )
    # Receipts of some rooms changed after a stream position (incremental /sync).
    txn.execute("CREATE INDEX receipts_by_room_stream ON receipts (room_nid, stream_id)")
    txn.engine.create_sequence(txn, "receipts_stream")
