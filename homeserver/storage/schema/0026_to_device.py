"""Owner: storage.to_device.  Send-to-device messages waiting for their device, and the
transaction IDs of the sends that queued them (sequence ``to_device_stream``).

``device_inbox`` holds each message until its device acknowledges it (a ``/sync``
whose ``since`` is past it, or the WebSocket stream's ``ack`` frame); one send takes
one position for all its rows, and gives a device at most one message, so a device's
messages are ordered (and paged) by position alone.  Reads and deletes are ranges of
the primary key ``(user_id, device_id, stream_id)``.

``to_device_transactions`` makes a send idempotent: its row is written in the same
transaction as the messages, so a retried ``PUT`` (concurrent, or after a restart)
finds it and queues nothing.  A send is identified by its sender's device, or by its
access token when the token has no device (``device_id`` ``''``, ``token_id`` the
token's ID; 0 for device-bound tokens, whose transaction IDs outlive a token refresh),
for a day after the send (``created_ts``: older rows are pruned).  Both tables lose a device's rows when the device is deleted (storage.devices calls
``delete_device_messages_txn`` in its deletion transactions).

spec: client-server-api/modules/send_to_device.md, _index.md#transaction-identifiers
"""

from homeserver.storage.transaction import Transaction

_STATEMENTS = (
    """
    CREATE TABLE device_inbox (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        stream_id BIGINT NOT NULL,
        sender TEXT NOT NULL,
        message_type TEXT NOT NULL,
        content TEXT NOT NULL,
        PRIMARY KEY (user_id, device_id, stream_id)
    )
    """,
    # The highest position at start-up.
    "CREATE INDEX device_inbox_by_stream ON device_inbox (stream_id)",
    """
    CREATE TABLE to_device_transactions (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        token_id BIGINT NOT NULL,
        message_type TEXT NOT NULL,
        txn_id TEXT NOT NULL,
        stream_id BIGINT NOT NULL,
        created_ts BIGINT NOT NULL,
        PRIMARY KEY (user_id, device_id, token_id, message_type, txn_id)
    )
    """,
    "CREATE INDEX to_device_transactions_by_stream ON to_device_transactions (stream_id)",
    # Pruning the transaction IDs older than the retry window.
    "CREATE INDEX to_device_transactions_by_age ON to_device_transactions (created_ts)",
)


def run(txn: Transaction) -> None:
    for statement in _STATEMENTS:
        txn.execute(statement)
    txn.engine.create_sequence(txn, "to_device_stream")
