"""Owners: storage.account_data (``account_data``) and storage.filters (``user_filters``).

Account data keeps one row per (user, room, type) holding the newest content and the
``account_data_stream`` position of its last change, so "what changed for this user
since position P" is one indexed range read.  Global account data uses the room ID
``''`` (never a valid room ID), keeping the primary key free of NULLs.

Filters are immutable; ``filter_hash`` lets re-uploading an identical filter return
the existing ID instead of growing the table each time a client starts.
"""

from homeserver.storage.transaction import Transaction

_STATEMENTS = (
    """
    CREATE TABLE account_data (
        user_id TEXT NOT NULL,
        room_id TEXT NOT NULL,
        data_type TEXT NOT NULL,
        stream_id BIGINT NOT NULL,
        content TEXT NOT NULL,
        PRIMARY KEY (user_id, room_id, data_type)
    )
    """,
    "CREATE INDEX account_data_by_user_stream ON account_data (user_id, stream_id)",
    # The newest position at start-up, and (later) catching up on everyone's changes.
    "CREATE INDEX account_data_by_stream ON account_data (stream_id)",
    """
    CREATE TABLE user_filters (
        user_id TEXT NOT NULL,
        filter_id BIGINT NOT NULL,
        filter_hash TEXT NOT NULL,
        filter_json TEXT NOT NULL,
        PRIMARY KEY (user_id, filter_id)
    )
    """,
    "CREATE UNIQUE INDEX user_filters_by_hash ON user_filters (user_id, filter_hash)",
)

SEQUENCES = ("account_data_stream", "user_filter_ids")


def run(txn: Transaction) -> None:
    for statement in _STATEMENTS:
        txn.execute(statement)
    for sequence in SEQUENCES:
        txn.engine.create_sequence(txn, sequence)
