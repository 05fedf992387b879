"""Owner: storage.device_lists.  The ``device_lists`` stream: which user's device list
changed at which position (sequence ``device_lists_stream``).

A row is written when a device uploads new or changed device keys, is renamed or is
deleted, or the user's cross-signing keys change: clients that track the user
(everyone sharing a room with them) must query their keys again.  Only "who, when" is
kept; what changed is read from the key tables.  ``only_for`` names the one user a
change concerns when no one else may see it: a signature made with that user's
user-signing key on the changed user's master key (shown to its signer alone); NULL
for everyone sharing a room with the changed user.  Rows are append-only: ``/sync`` and
``/keys/changes`` ask for the users changed in a range of positions.

spec: client-server-api/modules/end_to_end_encryption.md#tracking-the-device-list-for-a-user
"""

from homeserver.storage.transaction import Transaction


def run(txn: Transaction) -> None:
    txn.execute(
        "CREATE TABLE device_list_changes ("
        " stream_id BIGINT NOT NULL PRIMARY KEY,"
        " user_id TEXT NOT NULL,"
        " only_for TEXT)"
    )
    # The primary key answers "users changed in (a, b]"; this one a user's changes.
    txn.execute(
        "CREATE INDEX device_list_changes_by_user ON device_list_changes (user_id, stream_id)"
    )
    txn.engine.create_sequence(txn, "device_lists_stream")
